package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/charter-ledger/charter/internal/auth/issuer"
	"github.com/charter-ledger/charter/internal/system"
)

const clientUsage = `Usage: charter client SUBCOMMAND [flags]

The clients of a node's built-in OAuth2 issuer: applications that get
bearer tokens at the node's /oauth/token with their id and secret (the
client-credentials grant). They are kept in DATA/access/clients.json of the
node's home; a running node sees a change within a second.

Subcommands:
  add --home HOME --name NAME --roles ROLES [--keys ID,ID] [--org ORG] [--json]
                                 register a client; prints its id and its secret, once
  list --home HOME [--json]      the clients (never their secrets)
  revoke --home HOME ID          revoke a client: its token requests and its tokens are refused

Run 'charter client SUBCOMMAND --help' for its flags.
`

func runClient(args []string, stdout, stderr io.Writer) error {
	return runSubcommand(clientUsage, args, stdout, stderr,
		subcommand{"add", clientAdd}, subcommand{"list", clientList}, subcommand{"revoke", clientRevoke})
}

// clientHome reads HOME/config.json and returns the node's clients file
// and organization.
func clientHome(home string) (path, org string, err error) {
	cfg, dataDir, err := loadNodeHome(home)
	if err != nil {
		return "", "", err
	}
	return issuer.ClientsPath(dataDir), cfg.Org, nil
}

// clientView is a client as the commands show it: never its hash.
type clientView struct {
	ID      string     `json:"id"`
	Org     string     `json:"org"`
	Name    string     `json:"name"`
	Roles   []string   `json:"roles"`
	Keys    []string   `json:"keys"`
	Created time.Time  `json:"created"`
	Revoked *time.Time `json:"revoked,omitempty"`
	// Secret is set once, in the answer of add.
	Secret string `json:"secret,omitempty"`
}

func viewOf(c issuer.Client) clientView {
	v := clientView{ID: c.ID, Org: c.Org, Name: c.Name, Roles: c.Roles.Names(), Keys: c.Keys, Created: c.Created}
	if v.Keys == nil {
		v.Keys = []string{}
	}
	if !c.Active() {
		r := c.Revoked
		v.Revoked = &r
	}
	return v
}

func clientAdd(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter client add --home HOME --name NAME --roles read,write [--keys ID,ID] [--org ORG] [--json]"
	fs := newFlagSet("client add", stderr)
	home := fs.String("home", "", "the node's home folder (config.json names its data directory and organization)")
	name := fs.String("name", "", "the client's name, e.g. the application's (no spaces or commas)")
	rolesFlag := fs.String("roles", "", "comma separated roles its tokens may carry: read, write, deploy, admin, auditor")
	keysFlag := fs.String("keys", "", "comma separated ids of node-held signing keys the client may use (default: none)")
	org := fs.String("org", "", "the client's organization (default: the node's)")
	jsonOut := fs.Bool("json", false, "print the client and its secret as JSON")
	setUsage(fs, stderr, syntax)
	if err := parse(fs, args); err != nil {
		return err
	}
	path, nodeOrg, err := clientHome(*home)
	if err != nil {
		return err
	}
	if *name == "" {
		return errors.New("--name is required: the client's name, e.g. --name billing-app")
	}
	if strings.TrimSpace(*rolesFlag) == "" {
		return errors.New("--roles is required: e.g. --roles read or --roles read,write")
	}
	roles, err := system.ParseRoles(strings.Split(*rolesFlag, ","))
	if err != nil {
		return fmt.Errorf("--roles: %w", err)
	}
	var keys []string
	for _, k := range strings.Split(*keysFlag, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	if *org == "" {
		*org = nodeOrg
	}
	if *org == "" {
		return errors.New("--org is required: the node's config.json names no organization")
	}
	c, secret, err := issuer.AddClient(path, issuer.NewClient{Org: *org, Name: *name, Roles: roles, Keys: keys}, time.Now())
	if err != nil {
		return flagError(err)
	}
	if *jsonOut {
		v := viewOf(c)
		v.Secret = secret
		return printValue(stdout, v)
	}
	fmt.Fprintf(stdout, `Client %s of %s added to %s
  name   %s
  roles  %s
  keys   %s

Its secret, shown this once (keep it like a password):

  %s

A token:  curl -u '%s:SECRET' -d grant_type=client_credentials https://NODE/oauth/token
`, c.ID, c.Org, path, c.Name, c.Roles, listText(c.Keys), secret, c.ID)
	return nil
}

// flagError names the flag of a clients file error about a field.
func flagError(err error) error {
	msg := err.Error()
	for field, flagName := range map[string]string{"name": "--name", "org": "--org", "roles": "--roles", "keys": "--keys"} {
		if strings.HasPrefix(msg, field+":") || strings.HasPrefix(msg, field+" ") || strings.HasPrefix(msg, field+"[") {
			return fmt.Errorf("%s: %s", flagName, msg)
		}
	}
	return err
}

func listText(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ",")
}

func clientList(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("client list", stderr)
	home := fs.String("home", "", "the node's home folder")
	jsonOut := fs.Bool("json", false, "print the clients as JSON")
	setUsage(fs, stderr, "charter client list --home HOME [--json]")
	if err := parse(fs, args); err != nil {
		return err
	}
	path, _, err := clientHome(*home)
	if err != nil {
		return err
	}
	cs, err := issuer.ListClients(path)
	if err != nil {
		return err
	}
	if *jsonOut {
		views := make([]clientView, len(cs))
		for i, c := range cs {
			views[i] = viewOf(c)
		}
		return printValue(stdout, views)
	}
	if len(cs) == 0 {
		fmt.Fprintf(stdout, "No clients in %s; add one with 'charter client add --home %s --name NAME --roles read'\n", path, *home)
		return nil
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ID\tORG\tNAME\tROLES\tKEYS\tCREATED\tREVOKED")
	for _, c := range cs {
		revoked := "-"
		if !c.Active() {
			revoked = c.Revoked.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Org, c.Name, c.Roles, listText(c.Keys),
			c.Created.UTC().Format(time.RFC3339), revoked)
	}
	return tw.Flush()
}

func clientRevoke(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter client revoke --home HOME ID"
	fs := newFlagSet("client revoke", stderr)
	home := fs.String("home", "", "the node's home folder")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, syntax); err != nil {
		return err
	}
	path, _, err := clientHome(*home)
	if err != nil {
		return err
	}
	c, changed, err := issuer.RevokeClient(path, pos[0], time.Now())
	if err != nil {
		return fmt.Errorf("%w; 'charter client list --home %s' shows the ids", err, *home)
	}
	if !changed {
		fmt.Fprintf(stdout, "Client %s was revoked already, at %s\n", c.ID, c.Revoked.UTC().Format(time.RFC3339))
		return nil
	}
	fmt.Fprintf(stdout, "Client %s of %s revoked: a running node refuses its token requests and its tokens within a second\n", c.ID, c.Org)
	return nil
}
