package spec

import (
	"sort"

	"github.com/rhizome-mesh/rhizome/internal/nearest"
)

func suggest(word string, candidates []string) string { return nearest.Word(word, candidates) }

func didYouMean(word string, candidates []string) string { return nearest.Hint(word, candidates) }

func quoteAll(ss []string) []string { return nearest.Quote(ss) }

// sortedKeys returns the keys of a set, sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
