package connector

import "github.com/rhizome-mesh/rhizome/internal/nearest"

func didYouMean(word string, candidates []string) string { return nearest.Hint(word, candidates) }
