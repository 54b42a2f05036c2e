package main

import (
	"fmt"
	"io"

	"github.com/charter-ledger/charter/internal/node"
)

func runJoin(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("join", stderr)
	genesis := fs.String("genesis", "", "the network's genesis.json")
	peers := fs.String("peers", "", "the network's peers.json (written by 'charter init')")
	org := fs.String("org", "", "name of the new organization")
	out := fs.String("out", "", "folder to write the organization's CA, admin identities and node home (OUT/node) to")
	host := fs.String("host", "127.0.0.1", "address the node listens on")
	rpcPort := fs.Int("rpc.port", 8600, "JSON-RPC port of the node")
	p2pPort := fs.Int("p2p.port", 30400, "p2p port of the node")
	metricsPort := fs.Int("metrics.port", 0, "metrics port of the node (0: none)")
	pwFile := fs.String("password-file", "", "encrypt every private key written (CA, admin, node, TLS and privacy keys) with the password on this file's first line")
	allowDevKeys := fs.Bool("allow-dev-keys", false, "allow a --host beyond loopback although the network's genesis funds the development accounts (their keys are public)")
	apiAuth := fs.String("api-auth", "", "client access to the node's API: required (a token or client certificate; the default) or open (the default on a network that funds the development accounts)")
	apiTLS := fs.Bool("api-tls", false, "serve the node's API over TLS with its certificate (default: on when --api-auth is required)")
	tier := fs.String("tier", "validate", "what the organization asks to be admitted as: validate (its node validates from the next epoch), write or read (its node is an observer: it follows the chain, serves RPC and forwards transactions but never votes)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch *tier {
	case "validate", "write", "read":
	default:
		return fmt.Errorf("--tier %q: want validate, write or read", *tier)
	}
	var tlsOpt *bool
	if flagsSet(fs)["api-tls"] {
		tlsOpt = apiTLS
	}
	pw, err := readPassword("password-file", *pwFile)
	if err != nil {
		return err
	}
	res, err := node.Join(node.JoinOptions{Genesis: *genesis, Peers: *peers, Org: *org, Dir: *out, Host: *host,
		RPCPort: *rpcPort, P2PPort: *p2pPort, MetricsPort: *metricsPort, Password: pw, AllowDevKeys: *allowDevKeys,
		APIAuth: *apiAuth, APITLS: tlsOpt})
	if err != nil {
		return devKeysHint(err)
	}
	start := "charter node --home " + res.Home
	if *pwFile != "" {
		start += " --password-file " + *pwFile
	}
	// Only a validate-tier organization may run a validator; the node of
	// another tier is an observer.
	validator, role := " --validator "+res.NodeID.Hex(), "validates from the next epoch"
	if *tier != "validate" {
		validator, role = "", "follows the chain as an observer (it never votes)"
	}
	fmt.Fprintf(stdout, `Organization %s prepared in %s:
  root CA        %s
  admin account  %s (key %s)
  node           %s, id %s
  certificate    fingerprint %s
  privacy key    %s (public key %s; the private key in the node home)

A member's admin proposes the admission (the other members then vote with 'charter gov vote'):

  charter gov propose add-organization --name %s --roots %s --tier %s --weight 1 \
    --admin %s --node %s --fingerprint %s%s \
    --privacy-key %s \
    --memo "admit %s" --key MEMBER_ADMIN_KEY --rpc MEMBER_RPC

Once it passes, start the node; it syncs from its peers and %s:

  %s
`, res.Org, *out, res.Roots, res.Admin.Hex(), res.AdminKey, res.Home, res.NodeID.Hex(), res.Fingerprint.Hex(),
		res.PrivacyKey, res.PrivacyKeyFile,
		res.Org, res.Roots, *tier, res.Admin.Hex(), res.NodeID.Hex(), res.Fingerprint.Hex(), validator, res.PrivacyKeyFile, res.Org, role, start)
	return nil
}
