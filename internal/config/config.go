// Package config layers the configuration of every triage binary the same
// way. Each flag's value comes, in falling precedence, from the command
// line, from its TRIAGE_* environment variable, from the YAML file named by
// --config (or TRIAGE_CONFIG), and last from the default the flag was
// defined with:
//
//	--dlq-topic events.dlq    TRIAGE_DLQ_TOPIC=events.dlq    dlq_topic: events.dlq
//
// A binary defines its flags on a flag.FlagSet and calls Parse, which
// layers them with github.com/peterbourgon/ff/v4 and answers --help with
// every flag's variable, YAML key and default. The consumer's flags live
// here as Config. Library packages never read the environment: cmd/
// parses here and passes plain values down.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/peterbourgon/ff/v4"
)

// EnvPrefix starts the environment variable of every flag.
const EnvPrefix = "TRIAGE"

// FileFlag is the flag, defined by Parse, that names the YAML file.
const FileFlag = "config"

// EnvVar returns the environment variable of the flag name:
// decisions-topic → TRIAGE_DECISIONS_TOPIC.
func EnvVar(name string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// YAMLKey returns the key of the flag name in the YAML file:
// decisions-topic → decisions_topic. The file may also spell a key as the
// flag name itself (decisions-topic).
func YAMLKey(name string) string { return strings.ReplaceAll(name, "-", "_") }

// Parse sets the flags of fs from args, then TRIAGE_* environment
// variables, then the YAML file named by --config (a flag Parse defines),
// each source setting only the flags that the ones before it left unset.
// Single- and double-dash flags are the same (-workers, --workers).
//
// A YAML key that names no flag, a value a flag refuses and an argument
// left over after the flags are errors. On -h or --help Parse writes the
// help to help and returns flag.ErrHelp.
func Parse(fs *flag.FlagSet, args []string, help io.Writer) error {
	path := fs.String(FileFlag, "", "YAML file of flag values, keyed by flag name (brokers, decisions_topic)")
	// The adapter snapshots fs, defaults included, before anything is set,
	// so that the help shows the defaults and never a configured secret.
	ffs := ff.NewFlagSetFrom(fs.Name(), fs)
	err := ff.Parse(ffs, args,
		ff.WithEnvVarPrefix(EnvPrefix),
		ff.WithConfigFileFlag(FileFlag),
		ff.WithConfigFileParser(yamlParser(fs, path)),
	)
	switch {
	case errors.Is(err, ff.ErrHelp):
		if _, werr := writeHelp(help, ffs); werr != nil {
			return fmt.Errorf("write help: %w", werr)
		}
		return flag.ErrHelp
	case err != nil:
		return err
	}
	if rest := ffs.GetArgs(); len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q", rest)
	}
	return nil
}

// providerKeyEnv names, per LLM provider, the variable its own SDK and
// tools read the API key from.
var providerKeyEnv = map[string]string{"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}

// APIKey returns key (from --api-key or TRIAGE_API_KEY) or, when it is
// empty, the provider's own variable from getenv (ANTHROPIC_API_KEY,
// OPENAI_API_KEY), so that a key already set up for the provider's tools
// works as it is. The offline provider needs none.
func APIKey(provider, key string, getenv func(string) string) string {
	if key != "" {
		return key
	}
	if env := providerKeyEnv[provider]; env != "" {
		return getenv(env)
	}
	return ""
}
