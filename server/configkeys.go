package server

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/tact-nba/tact/server/flaghint"
)

// source is where a configuration value comes from, as a bit set.
type source uint8

const (
	fromFile source = 1 << iota
	fromEnv
	fromFlag
)

// configKey is one configuration key, as Config's tags declare it.
type configKey struct {
	name  string // the key, e.g. grpc_addr
	def   string // the default, as text ("" for the zero value)
	help  string
	from  source
	index []int // the field, through Cache or Redis
	typ   reflect.Type
}

// configKeys lists every key in the order Config declares them. It is
// worked out once from the tags and never changed.
var configKeys = walkConfig(reflect.TypeFor[Config](), nil)

// walkConfig lists the keys of a struct type's fields: a field tagged
// koanf:"" is a group whose fields are walked (Cache, Redis), koanf:"-"
// is not a key, and any other field must name its key.
func walkConfig(t reflect.Type, index []int) []configKey {
	var keys []configKey
	for i := range t.NumField() {
		f := t.Field(i)
		name, ok := f.Tag.Lookup("koanf")
		at := append(append([]int(nil), index...), i)
		switch {
		case !ok:
			panic(fmt.Sprintf("server: config field %s has no koanf tag", f.Name))
		case name == "-":
			continue
		case name == "" && f.Type.Kind() == reflect.Struct:
			keys = append(keys, walkConfig(f.Type, at)...)
			continue
		}
		k := configKey{name: name, def: f.Tag.Get("default"), help: f.Tag.Get("help"), from: fromFile | fromEnv | fromFlag, index: at, typ: f.Type}
		if list, ok := f.Tag.Lookup("from"); ok {
			k.from = 0
			for _, s := range strings.Split(list, ",") {
				k.from |= map[string]source{"file": fromFile, "env": fromEnv, "flag": fromFlag}[s]
			}
		}
		keys = append(keys, k)
	}
	return keys
}

func keyNamed(name string) *configKey {
	for i := range configKeys {
		if configKeys[i].name == name {
			return &configKeys[i]
		}
	}
	return nil
}

// env returns the key's environment variable.
func (k *configKey) env() string { return "TACT_" + strings.ToUpper(k.name) }

// flag returns the key's flag name, without dashes in front.
func (k *configKey) flag() string { return strings.ReplaceAll(k.name, "_", "-") }

// sources says where the key can be set, for an error message.
func (k *configKey) sources() string {
	var where []string
	if k.from&fromFile != 0 {
		where = append(where, "the config file")
	}
	if k.from&fromEnv != 0 {
		where = append(where, k.env())
	}
	if k.from&fromFlag != 0 {
		where = append(where, "--"+k.flag())
	}
	return "set it with " + strings.Join(where, " or ")
}

// set parses raw (text, or a value YAML decoded) into the key's field of
// c. The message of an error names the value, not the key.
func (k *configKey) set(c *Config, raw any) error {
	v, err := parseValue(k.typ, raw)
	if err != nil {
		return err
	}
	reflect.ValueOf(c).Elem().FieldByIndex(k.index).Set(v)
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

// parseValue converts a configuration value to typ. Text is parsed; YAML's
// own types are taken when they fit. A duration needs a unit in every
// source: YAML's 2 is refused, as "2" is from a flag or the environment,
// rather than read as 2 ns.
func parseValue(typ reflect.Type, raw any) (reflect.Value, error) {
	v := reflect.New(typ).Elem()
	s, isText := raw.(string)
	switch {
	case typ == durationType:
		switch {
		case isText:
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil {
				if _, numErr := strconv.ParseFloat(strings.TrimSpace(s), 64); numErr == nil {
					return v, fmt.Errorf("%q %w: write it with one, e.g. %ss or %sms", s, errNoUnit, s, s)
				}
				return v, fmt.Errorf("%q is not a duration (e.g. 2s, 500ms, 1m30s)", s)
			}
			v.SetInt(int64(d))
		case isNumber(raw):
			return v, fmt.Errorf("%v %w: write it with one, e.g. %vs or %vms", raw, errNoUnit, raw, raw)
		default:
			return v, fmt.Errorf("%v is not a duration (e.g. 2s, 500ms, 1m30s)", raw)
		}
	case typ.Kind() == reflect.String:
		switch x := raw.(type) {
		case string, bool, int, int64, uint64, float64:
			v.SetString(fmt.Sprint(raw))
		case []any: // a YAML list, for a key that takes a comma-separated one
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = fmt.Sprint(e)
			}
			v.SetString(strings.Join(parts, ","))
		default:
			return v, fmt.Errorf("%v is not a single value", raw)
		}
	case typ.Kind() == reflect.Bool:
		switch b := raw.(type) {
		case bool:
			v.SetBool(b)
		case string:
			x, err := strconv.ParseBool(strings.TrimSpace(b))
			if err != nil {
				return v, fmt.Errorf("%q is not true or false", b)
			}
			v.SetBool(x)
		default:
			return v, fmt.Errorf("%v is not true or false", raw)
		}
	case typ.Kind() == reflect.Int || typ.Kind() == reflect.Int64:
		var n int64
		switch x := raw.(type) {
		case string:
			var err error
			if n, err = strconv.ParseInt(strings.TrimSpace(x), 10, 64); err != nil {
				return v, fmt.Errorf("%q is not a whole number", x)
			}
		case int:
			n = int64(x)
		case int64:
			n = x
		case uint64:
			if x > math.MaxInt64 {
				return v, fmt.Errorf("%d is too large", x)
			}
			n = int64(x)
		case float64:
			if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
				return v, fmt.Errorf("%v is not a whole number", x)
			}
			n = int64(x)
		default:
			return v, fmt.Errorf("%v is not a whole number", raw)
		}
		if v.OverflowInt(n) {
			return v, fmt.Errorf("%d is too large", n)
		}
		v.SetInt(n)
	case typ.Kind() == reflect.Float64:
		switch x := raw.(type) {
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return v, fmt.Errorf("%q is not a number", x)
			}
			v.SetFloat(f)
		case int:
			v.SetFloat(float64(x))
		case int64:
			v.SetFloat(float64(x))
		case uint64:
			v.SetFloat(float64(x))
		case float64:
			v.SetFloat(x)
		default:
			return v, fmt.Errorf("%v is not a number", raw)
		}
	default:
		panic(fmt.Sprintf("server: config field of type %s", typ)) // TestConfigDeclarations covers every field
	}
	return v, nil
}

func isNumber(x any) bool {
	switch x.(type) {
	case int, int64, uint64, float64:
		return true
	}
	return false
}

// parseFlags parses args into a flag set with one flag per key that flags
// may set. The flags keep their text: values are parsed with the other
// sources', so that a bad flag value is one problem among the rest rather
// than the only one reported.
func parseFlags(args []string) (*pflag.FlagSet, error) {
	fs := pflag.NewFlagSet("tactd", pflag.ContinueOnError)
	fs.SortFlags = false
	for i := range configKeys {
		k := &configKeys[i]
		if k.from&fromFlag == 0 {
			continue
		}
		f := fs.VarPF(&textFlag{text: k.def, typ: flagTypeName(k.typ)}, k.flag(), "", k.help)
		if k.typ.Kind() == reflect.Bool {
			f.NoOptDefVal = "true"
		}
		if k.name == "demo" {
			f.NoOptDefVal = "true" // --demo alone seeds the demo into any data_dir
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s%s", strings.Join(fs.Args(), " "), flaghint.Hint(fs, args, fs.Arg(0)))
	}
	return fs, nil
}

func flagTypeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Float64:
		return "float"
	case t.Kind() == reflect.Int64:
		return "int"
	default:
		return t.Kind().String()
	}
}

// textFlag is a flag that keeps the text given; its type name is only for
// the help.
type textFlag struct{ text, typ string }

func (f *textFlag) String() string     { return f.text }
func (f *textFlag) Set(s string) error { f.text = s; return nil }
func (f *textFlag) Type() string       { return f.typ }
