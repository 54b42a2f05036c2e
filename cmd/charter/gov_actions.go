package main

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

// The flags of `charter gov propose ACTION`, derived from the action's
// definition in internal/system (system.Field): one flag per argument,
// parsed by the argument's Go type. The CLI checks nothing the chain
// decides: before sending it runs the arguments' own Validate, the
// chain's first check, and the node's gas estimate runs the rest.

// actionByName reads an action by its CLI name (add-organization).
func actionByName(name string) (system.Action, error) {
	for _, a := range system.Actions() {
		if a.CLIName() == strings.ToLower(name) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown action %q; want one of %s", name, strings.Join(actionNames(), ", "))
}

func actionNames() []string {
	var names []string
	for _, a := range system.Actions() {
		names = append(names, a.CLIName())
	}
	return names
}

// actionLabel reads an action as the charter_ namespace names it
// (AddOrganization) and gives the CLI's name.
func actionLabel(name string) string {
	if a, err := system.ParseAction(name); err == nil {
		return a.CLIName()
	}
	return name
}

// argFlag is the flag of one argument.
type argFlag struct {
	field system.Field
	index int
	text  *string   // a single value
	list  *listFlag // a list
	on    *bool     // a bool
}

// actionFlags are an action's argument flags on one flag set.
type actionFlags struct {
	action system.Action
	fs     *flag.FlagSet
	flags  []argFlag
}

// addActionFlags defines a's argument flags on fs.
func addActionFlags(fs *flag.FlagSet, a system.Action) *actionFlags {
	af := &actionFlags{action: a, fs: fs}
	for i, f := range a.Fields() {
		fl := argFlag{field: f, index: i}
		help := f.Help + choices(a, f)
		switch {
		case f.Type.Kind() == reflect.Bool:
			fl.on = fs.Bool(f.Flag, false, help)
		case f.Type.Kind() == reflect.Slice && f.ABIType != "bytes":
			fl.list = new(listFlag)
			fs.Var(fl.list, f.Flag, help)
		default:
			fl.text = fs.String(f.Flag, f.Default, help)
		}
		af.flags = append(af.flags, fl)
	}
	return af
}

// choices lists the values an argument may take where the chain names
// them, for its flag's help.
func choices(a system.Action, f system.Field) string {
	switch {
	case f.Type == reflect.TypeFor[system.Class]():
		var names []string
		for c := system.Class(0); c < system.NumClasses; c++ {
			names = append(names, c.String())
		}
		return ": " + strings.Join(names, ", ")
	case a == system.ActSetParameter && f.Name == "name":
		var names []string
		for _, p := range system.Params {
			names = append(names, fmt.Sprintf("%s (%d to %d)", p.Name, p.Min, p.Max))
		}
		return ": " + strings.Join(names, ", ")
	}
	return ""
}

// syntax is the action's flags in a usage line.
func actionSyntax(a system.Action) string {
	var parts []string
	current := false
	for _, f := range a.Fields() {
		meta := f.Meta
		if meta == "" {
			meta = strings.ToUpper(f.Flag)
		}
		switch {
		case f.Type.Kind() == reflect.Bool:
			parts = append(parts, "[--"+f.Flag+"]")
		case f.Type.Kind() == reflect.Slice && f.ABIType != "bytes":
			parts = append(parts, "[--"+f.Flag+" "+meta+"]...")
		case f.Default != "" || f.Opt || f.Current:
			parts = append(parts, "[--"+f.Flag+" "+meta+"]")
			current = current || f.Current
		default:
			parts = append(parts, "--"+f.Flag+" "+meta)
		}
	}
	s := strings.Join(parts, " ")
	if current {
		s += " (unset ones keep their current value)"
	}
	return s
}

func (af *actionFlags) given(name string) bool {
	found := false
	af.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// build makes the arguments from the flags. Arguments whose flag says
// "current" and was not given are read from the node through conn. It
// does not validate them.
func (af *actionFlags) build(conn func() (*client, error)) (system.Args, error) {
	args, ok := system.NewArgs(af.action)
	if !ok {
		return nil, fmt.Errorf("unknown action %d", af.action)
	}
	var missing, current []string
	for _, fl := range af.flags {
		f, given := fl.field, af.given(fl.field.Flag)
		var v any
		switch {
		case fl.on != nil:
			v = *fl.on != f.Invert
		case fl.list != nil:
			list := reflect.MakeSlice(f.Type, 0, len(*fl.list))
			for _, s := range *fl.list {
				e, err := parseValue(f, f.Type.Elem(), s)
				if err != nil {
					return nil, err
				}
				list = reflect.Append(list, reflect.ValueOf(e))
			}
			v = list.Interface()
		case !given && f.Current:
			current = append(current, "--"+f.Flag)
			continue
		case !given && f.Default == "" && f.Opt:
			continue
		case !given && f.Default == "":
			missing = append(missing, "--"+f.Flag)
			continue
		default:
			var err error
			if v, err = parseValue(f, f.Type, *fl.text); err != nil {
				return nil, err
			}
		}
		if err := system.SetArg(args, fl.index, v); err != nil {
			return nil, err
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s is required for this action", missing[0])
	}
	if len(current) > 0 {
		if len(current) == len(currentFlags(af.action)) {
			return nil, fmt.Errorf("give at least one of %s", strings.Join(current, ", "))
		}
		fill, ok := currentArgs[af.action]
		if !ok {
			return nil, fmt.Errorf("%s: this CLI cannot read the current value of %s; give it", af.action.CLIName(), current[0])
		}
		c, err := conn()
		if err != nil {
			return nil, err
		}
		now, err := fill(c, args)
		if err != nil {
			return nil, err
		}
		// Keep what is not given.
		dst, src := reflect.ValueOf(args).Elem(), reflect.ValueOf(now).Elem()
		for _, fl := range af.flags {
			if fl.field.Current && !af.given(fl.field.Flag) {
				dst.Field(fl.index).Set(src.Field(fl.index))
			}
		}
	}
	return args, nil
}

func currentFlags(a system.Action) []string {
	var out []string
	for _, f := range a.Fields() {
		if f.Current {
			out = append(out, f.Flag)
		}
	}
	return out
}

// parseValue reads one value of type t for field f from the flag's text:
// a file's content for a File field.
func parseValue(f system.Field, t reflect.Type, s string) (any, error) {
	name := "--" + f.Flag
	if f.File {
		if strings.TrimSpace(s) == "" {
			return nil, fmt.Errorf("%s is required: a file name", name)
		}
		data, err := os.ReadFile(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		s = string(data)
	}
	return system.ParseArgText(f, t, s)
}

// currentArgs read, for the actions with "current" arguments, the values
// in force now, keyed by the arguments given (an organization's name, a
// rule's class): a convenience of the CLI, not a rule of the chain.
var currentArgs = map[system.Action]func(c *client, given system.Args) (system.Args, error){
	system.ActSetOrganization: func(c *client, given system.Args) (system.Args, error) {
		g, ok := given.(*system.SetOrganization)
		if !ok {
			return nil, fmt.Errorf("set-organization: arguments of type %T", given)
		}
		var m rpc.Members
		if _, err := c.callInto(&m, "charter_members"); err != nil {
			return nil, err
		}
		i := slices.IndexFunc(m.Organizations, func(o rpc.MemberOrg) bool { return o.Name == g.Name })
		if i < 0 {
			return nil, fmt.Errorf("--name %q: no such organization in the registry", g.Name)
		}
		o := m.Organizations[i]
		now := &system.SetOrganization{Name: g.Name, Weight: o.Weight}
		if err := now.Tier.UnmarshalText([]byte(o.Tier)); err != nil {
			return nil, fmt.Errorf("organization %s: %v", g.Name, err)
		}
		if err := now.Status.UnmarshalText([]byte(o.Status)); err != nil {
			return nil, fmt.Errorf("organization %s is %s; give --status", g.Name, o.Status)
		}
		return now, nil
	},
	system.ActSetRule: func(c *client, given system.Args) (system.Args, error) {
		g, ok := given.(*system.SetRule)
		if !ok {
			return nil, fmt.Errorf("set-rule: arguments of type %T", given)
		}
		var pol rpc.PolicyInfo
		if _, err := c.callInto(&pol, "charter_policy"); err != nil {
			return nil, err
		}
		r, ok := pol.Rules[g.Class.String()]
		if !ok {
			return nil, fmt.Errorf("the node's policy has no rule for class %s", g.Class)
		}
		return &system.SetRule{Class: g.Class, Threshold: r.Threshold, Quorum: r.Quorum, ExpiryBlocks: r.ExpiryBlocks,
			Timelock: r.Timelock, MinApprovals: r.MinApprovals}, nil
	},
}
