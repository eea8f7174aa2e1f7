package sampling_test

import (
	"strings"
	"testing"

	"github.com/triage-dev/triage/sampling"
)

func TestReadTokens(t *testing.T) {
	got, err := sampling.ReadTokens("t", strings.NewReader("# region token\neu  s3cret-eu\n\nus\ts3cret-us\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (sampling.Token{Region: "eu", Secret: "s3cret-eu"}) || got[1] != (sampling.Token{Region: "us", Secret: "s3cret-us"}) {
		t.Errorf("tokens %+v", got)
	}
	for in, want := range map[string]string{
		"eu":                  "t:1: want \"region token\", got 1 fields",
		"eu a b":              "t:1: want \"region token\", got 3 fields",
		"eu same\nus same":    "t:2: the token of line 1 again",
		"# nothing but notes": "t: no tokens",
	} {
		_, err := sampling.ReadTokens("t", strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "same") {
			t.Errorf("the error quotes a token: %v", err)
		}
	}
}
