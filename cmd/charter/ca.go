package main

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/node"
)

const caUsage = `Usage: charter ca SUBCOMMAND [flags]

Subcommands:
  init-org   create an organization's root CA: DIR/ca.crt and DIR/ca.key (0600)
  issue      issue a node, admin or client certificate from an organization's CA
  verify     check a certificate against the organization roots of a genesis
  show       print a certificate's organization, name, role, validity and fingerprint
  privacy-key  create an organization's privacy key pair: DIR/privacy.key (0600) and DIR/privacy.pub

Run 'charter ca SUBCOMMAND --help' for its flags.
`

func runCA(args []string, stdout, stderr io.Writer) error {
	return runSubcommand(caUsage, args, stdout, stderr,
		subcommand{"init-org", caInitOrg}, subcommand{"issue", caIssue}, subcommand{"verify", caVerify}, subcommand{"show", caShow}, subcommand{"privacy-key", caPrivacyKey})
}

// readPassword reads a password file's first line; "" gives no password.
func readPassword(flagName, path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagName, err)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return nil, fmt.Errorf("--%s %s: the first line is empty", flagName, path)
	}
	return line, nil
}

func caInitOrg(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ca init-org", stderr)
	org := fs.String("org", "", "organization name (the subject O of every certificate it issues)")
	out := fs.String("out", "", "folder to write ca.crt and ca.key to (created 0700)")
	validity := fs.Duration("validity", identity.DefaultCAValidity, "how long the root is valid")
	pwFile := fs.String("password-file", "", "encrypt ca.key with the password on this file's first line")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *org == "" || *out == "" {
		return errors.New("--org and --out are required")
	}
	pw, err := readPassword("password-file", *pwFile)
	if err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(*out, "ca.crt"), filepath.Join(*out, "ca.key")
	if _, err := os.Stat(keyPath); err == nil {
		return fmt.Errorf("%s exists already; an organization's CA is created once (remove it to start over)", keyPath)
	}
	ca, err := identity.NewRootCA(*org, identity.CAOptions{Validity: *validity})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	if err := identity.SaveCA(ca, certPath, keyPath, pw); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Root CA of %s: %s (key %s), valid until %s, fingerprint %s\n",
		*org, certPath, keyPath, ca.Cert.NotAfter.UTC().Format(time.RFC3339), identity.FingerprintOf(ca.Cert))
	return nil
}

func caIssue(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ca issue", stderr)
	caDir := fs.String("ca", "", "the organization's CA folder (ca.crt, ca.key)")
	role := fs.String("role", "node", "node, admin or client")
	clientRole := fs.Bool("client", false, "issue a client certificate, for API clients (same as --role client); prints the flags to give charter commands")
	name := fs.String("name", "", "node or user name (subject CN); also the file names NAME.crt and NAME.key")
	hosts := fs.String("hosts", "", "comma separated IP addresses and DNS names of a node (subject alternative names)")
	out := fs.String("out", "", "folder for NAME.crt and NAME.key (default: the CA folder)")
	validity := fs.Duration("validity", identity.DefaultCertValidity, "how long the certificate is valid")
	caPwFile := fs.String("ca-password-file", "", "password of ca.key, on this file's first line")
	pwFile := fs.String("password-file", "", "encrypt the new key with the password on this file's first line")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *caDir == "" || *name == "" {
		return errors.New("--ca and --name are required")
	}
	if *clientRole {
		if flagsSet(fs)["role"] && *role != string(identity.RoleClient) {
			return fmt.Errorf("--client and --role %s disagree; give one", *role)
		}
		*role = string(identity.RoleClient)
	}
	caPw, err := readPassword("ca-password-file", *caPwFile)
	if err != nil {
		return err
	}
	pw, err := readPassword("password-file", *pwFile)
	if err != nil {
		return err
	}
	ca, err := identity.LoadCA(filepath.Join(*caDir, "ca.crt"), filepath.Join(*caDir, "ca.key"), caPw)
	if err != nil {
		if errors.Is(err, identity.ErrPasswordRequired) {
			return fmt.Errorf("%w (give --ca-password-file)", err)
		}
		return err
	}
	if now := time.Now(); now.After(ca.Cert.NotAfter) {
		return fmt.Errorf("the CA in %s expired %s; create a new one", *caDir, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	var hostList []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hostList = append(hostList, h)
		}
	}
	req := identity.CertRequest{Role: identity.Role(*role), Name: *name, Validity: *validity}
	req.DNSNames, req.IPAddresses = identity.SplitHosts(hostList)
	cert, key, err := ca.Issue(req)
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		dir = *caDir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(dir, *name+".crt"), filepath.Join(dir, *name+".key")
	if err := identity.WriteKeyFile(keyPath, key, pw); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists already; choose another --name or --out", keyPath)
		}
		return err
	}
	// The chain file holds the leaf and its root, so a peer that knows the
	// root by fingerprint only can still build the chain.
	if err := identity.WriteCertFile(certPath, cert, ca.Cert); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s certificate of %s/%s: %s (key %s), valid until %s, fingerprint %s\n",
		*role, ca.Org(), *name, certPath, keyPath, cert.NotAfter.UTC().Format(time.RFC3339), identity.FingerprintOf(cert))
	if req.Role == identity.RoleClient {
		pwHint := ""
		if len(pw) > 0 {
			pwHint = " --tls.key-password-file " + *pwFile
		}
		fmt.Fprintf(stdout, "Clients present it to a node's https:// or wss:// API with:\n  --tls.cert %s --tls.key %s%s --tls.ca %s\n"+
			"(--tls.ca: the CA certificate of the node's organization, here %s's; a node may also want a token: --token-file FILE)\n",
			certPath, keyPath, pwHint, filepath.Join(*caDir, "ca.crt"), ca.Org())
	}
	return nil
}

func caVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ca verify", stderr)
	genesis := fs.String("genesis", "", "genesis file whose organizations' roots are trusted")
	certFile := fs.String("cert", "", "certificate file (PEM, leaf first)")
	role := fs.String("role", "node", "role the certificate must have: node, admin or client")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *genesis == "" || *certFile == "" {
		return errors.New("--genesis and --cert are required")
	}
	spec, err := chain.LoadSpec(*genesis)
	if err != nil {
		return err
	}
	trust, err := node.TrustStore(spec)
	if err != nil {
		return err
	}
	certs, err := identity.ReadCertFile(*certFile)
	if err != nil {
		return err
	}
	usage := x509.ExtKeyUsageClientAuth
	id, err := trust.Verify(certs, usage, identity.Role(*role))
	if err != nil {
		return fmt.Errorf("%s: %w", *certFile, err)
	}
	fmt.Fprintf(stdout, "%s: trusted %s certificate of %s/%s, valid until %s\n",
		*certFile, id.Role, id.Org, id.Name, id.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func caShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ca show", stderr)
	certFile := fs.String("cert", "", "certificate file (PEM)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *certFile == "" {
		return errors.New("--cert is required")
	}
	certs, err := identity.ReadCertFile(*certFile)
	if err != nil {
		return err
	}
	for i, c := range certs {
		org := ""
		if len(c.Subject.Organization) > 0 {
			org = c.Subject.Organization[0]
		}
		kind := string(identity.RoleOf(c))
		if c.IsCA {
			kind = "CA"
		}
		fmt.Fprintf(stdout, "[%d] %s/%s (%s) issued by %q, valid %s to %s, fingerprint %s\n", i, org, c.Subject.CommonName, kind,
			c.Issuer.CommonName, c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), identity.FingerprintOf(c))
	}
	return nil
}
