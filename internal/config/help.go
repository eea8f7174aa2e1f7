package config

import (
	"io"

	"github.com/peterbourgon/ff/v4"
	"github.com/peterbourgon/ff/v4/ffhelp"
)

// writeHelp writes fs's flags, each with its usage and default and, on a
// line of its own, its environment variable and YAML key.
func writeHelp(w io.Writer, fs ff.Flags) (int64, error) {
	var lines []string
	_ = fs.WalkFlags(func(f ff.Flag) error {
		spec := ffhelp.MakeFlagSpec(f)
		name, _ := f.GetLongName()
		where := "env " + EnvVar(name)
		if name != FileFlag {
			where += ", yaml " + YAMLKey(name)
		}
		lines = append(lines, spec.Spec+"\t"+spec.Usage, "\t"+where)
		return nil
	})
	return ffhelp.Help{
		ffhelp.NewSection("NAME", fs.GetName()),
		{Title: "FLAGS", Lines: lines, LinePrefix: ffhelp.DefaultLinePrefix, LineColumns: true},
		ffhelp.NewSection("PRECEDENCE",
			"flags, then "+EnvPrefix+"_* environment variables, then the --"+FileFlag+" YAML file, then the defaults;",
			"YAML keys may also be written with '-' as in the flag name"),
	}.WriteTo(w)
}
