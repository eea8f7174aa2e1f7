package sampling

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// LoadTokens reads a file of region-bound sampler tokens (see ReadTokens).
func LoadTokens(path string) ([]Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sampling: tokens: %w", err)
	}
	defer f.Close()
	return ReadTokens(path, f)
}

// ReadTokens parses sampler tokens, one "region token" pair a line; blank
// lines and lines starting with # are skipped. name is used in errors,
// which never quote a token.
func ReadTokens(name string, r io.Reader) ([]Token, error) {
	var out []Token
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 2 {
			return nil, fmt.Errorf("sampling: %s:%d: want \"region token\", got %d fields", name, line, len(f))
		}
		if first, dup := seen[f[1]]; dup {
			return nil, fmt.Errorf("sampling: %s:%d: the token of line %d again: a token binds one region", name, line, first)
		}
		seen[f[1]] = line
		out = append(out, Token{Region: f[0], Secret: f[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sampling: read %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sampling: %s: no tokens", name)
	}
	return out, nil
}
