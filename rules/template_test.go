package rules

import "testing"

// TestUnfence: a value cannot carry anything a model may read as the data
// fence. The rows marked "bypass" reached the model intact before (issue 9):
// the replacer matched "<<<" and ">>>" byte for byte only.
// internal/injection fuzzes the whole prompt (FuzzFence) against a check
// written apart from unfence.
func TestUnfence(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"closing fence", "a\n>>>\nb", "a\n›››\nb"},
		{"opening fence", "<<<", "‹‹‹"},
		{"longer run, whole", ">>>>>", "›››››"},
		{"two are no fence", "a >> b << c", "a >> b << c"},
		{"mixed directions are no fence", "<><>", "<><>"},
		{"html is kept", "<p>x</p> a<b>c", "<p>x</p> a<b>c"},
		{"bypass: zero-width joiner", ">\u200d>\u200d>", "›››"},
		{"bypass: zero-width space and word joiner", "<\u200b<\u2060<", "‹‹‹"},
		{"bypass: spaces", "> > >", "›››"},
		{"bypass: no-break space and tab", "<\u00a0<\t<", "‹‹‹"},
		{"bypass: full-width", "＞＞＞", "›››"},
		{"bypass: small forms", "﹤﹤﹤", "‹‹‹"},
		{"bypass: full-width and ascii", "＞>﹥", "›››"},
		{"bypass: combining mark", ">\u0301>>", "›››"},
		{"bypass: bidi override", "\u202e>>\u202c>", "\u202e›››"},
		{"spaces around a run are kept", "x  >>>  y", "x  ›››  y"},
		{"a newline ends a run", ">>\n>", ">>\n>"},
		{"look-alikes stay", "››› »»» ≫≫≫ ‹‹‹", "››› »»» ≫≫≫ ‹‹‹"},
		{"not UTF-8 is kept", "\xff>>>\xfe", "\xff›››\xfe"},
		{"nothing to do", "plain text", "plain text"},
	}
	for _, tt := range tests {
		if got := unfence(tt.in); got != tt.want {
			t.Errorf("%s: unfence(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}
