package nearest

import "testing"

func TestWord(t *testing.T) {
	names := []string{"owner_team", "domain", "sensitivity_level", "tags"}
	for word, want := range map[string]string{
		"owner_tem": "owner_team", "Domian": "domain", "tag": "tags", "zzz": "",
	} {
		if got := Word(word, names); got != want {
			t.Errorf("Word(%q) = %q, want %q", word, got, want)
		}
	}
	if got := Hint("zzz", []string{"a", "b"}); got != "want one of: `a`, `b`" {
		t.Errorf("Hint lists candidates: %q", got)
	}
	if got := Hint("tagz", names); got != "did you mean `tags`?" {
		t.Errorf("Hint: %q", got)
	}
}
