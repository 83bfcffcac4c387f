// Package flaghint words the error of a command line in which a flag whose
// value is optional (a boolean such as --json, or tactd's --demo) was given
// its value after a space. pflag takes such a value only after "=", so the
// word after the flag is left over as an argument, and "unexpected
// arguments: true" alone does not say why. tactd and the tact CLI use it.
package flaghint

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// Hint returns " (--name takes its value after "=": --name=word)" when
// word, an argument left over by fs's parse of args, follows such a flag
// in args; else "".
func Hint(fs *pflag.FlagSet, args []string, word string) string {
	for i := 0; i+1 < len(args); i++ {
		name, ok := strings.CutPrefix(args[i], "--")
		if !ok || strings.Contains(name, "=") || args[i+1] != word {
			continue
		}
		if f := fs.Lookup(name); f != nil && f.NoOptDefVal != "" {
			return fmt.Sprintf(" (--%s takes its value after \"=\": --%s=%s)", name, name, word)
		}
	}
	return ""
}
