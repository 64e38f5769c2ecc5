// Package nearest finds the name an author most likely meant ("did you
// mean `owner_team`?"), for the hints of every input error. Our own code:
// a few dozen lines of edit distance are simpler than a dependency.
package nearest

import "strings"

// Word returns the candidate closest to word, or "" when none is close
// enough to be what the author meant. Case is ignored and a transposition
// counts as one edit.
func Word(word string, candidates []string) string {
	best, bestD := "", -1
	w := strings.ToLower(word)
	for _, c := range candidates {
		d := distance(w, strings.ToLower(c))
		if bestD < 0 || d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	if bestD < 0 {
		return ""
	}
	n := min(len(w), len(best))
	limit := max(1, n/4)
	if n >= 6 {
		limit = max(limit, 2)
	}
	if bestD <= limit && bestD < len(w) {
		return best
	}
	return ""
}

// Hint is a problem hint naming the closest candidate, or listing the
// candidates when none is close.
func Hint(word string, candidates []string) string {
	if s := Word(word, candidates); s != "" {
		return "did you mean `" + s + "`?"
	}
	if len(candidates) == 0 {
		return ""
	}
	return "want one of: " + strings.Join(Quote(candidates), ", ")
}

// Quote puts each name in backquotes.
func Quote(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "`" + s + "`"
	}
	return out
}

// distance is the optimal-string-alignment distance between a and b.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 256 || len(rb) > 256 { // names, not essays
		if a == b {
			return 0
		}
		return max(len(ra), len(rb))
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
