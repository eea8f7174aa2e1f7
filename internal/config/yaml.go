package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/peterbourgon/ff/v4"
	"go.yaml.in/yaml/v3"
)

// yamlParser reads the --config file for ff.Parse, whose set applies a
// value unless the command line or the environment already gave the flag
// one. The file is a mapping of flag names to values: a key may separate
// words with '_' (the documented spelling, as in the consumer's files from
// before ff) or with '-' (the flag name), but not both for one flag. A
// List flag also takes a sequence, set once per element.
//
// ff's own ffyaml parser would read the same files, but it needs
// gopkg.in/yaml.v2 in go.mod; this one uses the YAML library the module
// already has and names the line of each error.
func yamlParser(fs *flag.FlagSet, path *string) ff.ConfigFileParseFunc {
	return func(r io.Reader, set func(name, value string) error) error {
		if err := parseYAML(r, fs, set); err != nil {
			return fmt.Errorf("%s: %w", *path, err)
		}
		return nil
	}
}

func parseYAML(r io.Reader, fs *flag.FlagSet, set func(name, value string) error) error {
	var doc yaml.Node
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file: every flag keeps its default
		}
		return err
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of flag names to values", root.Line)
	}
	seen := map[string]string{} // flag name → the key that set it
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := strings.ReplaceAll(k.Value, "_", "-")
		f := fs.Lookup(name)
		if f == nil || name == FileFlag {
			return fmt.Errorf("line %d: unknown key %q", k.Line, k.Value)
		}
		if prev, ok := seen[name]; ok {
			return fmt.Errorf("line %d: %s: already set by %s", k.Line, k.Value, prev)
		}
		seen[name] = k.Value
		_, isList := f.Value.(*List)
		values, err := scalars(v, isList)
		if err != nil {
			return fmt.Errorf("line %d: %s: %w", v.Line, k.Value, err)
		}
		for _, s := range values {
			if err := set(name, s); err != nil {
				return fmt.Errorf("line %d: %s %q: %w", v.Line, k.Value, s, err)
			}
		}
	}
	return nil
}

// scalars returns the values of v: one for a scalar ("" for null), one per
// element of a sequence, and "" for an empty sequence, which empties a
// list rather than leaving its default.
func scalars(v *yaml.Node, list bool) ([]string, error) {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.ScalarNode:
		if isNull(v) {
			return []string{""}, nil
		}
		return []string{v.Value}, nil
	case yaml.SequenceNode:
		if !list {
			return nil, errors.New("a list for a flag that takes one value")
		}
		if len(v.Content) == 0 {
			return []string{""}, nil
		}
		out := make([]string, 0, len(v.Content))
		for _, e := range v.Content {
			if e.Kind != yaml.ScalarNode || isNull(e) {
				return nil, fmt.Errorf("line %d: want a list of values", e.Line)
			}
			out = append(out, e.Value)
		}
		return out, nil
	}
	return nil, errors.New("want a value or a list of values")
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }
