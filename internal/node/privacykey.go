package node

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/privacy"
	"github.com/charter-ledger/charter/internal/system"
)

// An organization's privacy key: `charter init` and `charter join` make
// one per organization, publish its public part in the genesis (or the
// AddOrganization proposal) and put the private key in each node home of
// the organization. The node loads it at start and checks it against the
// registry.

// File names of privacy keys.
const (
	// PrivacyKeyFile is the privacy private key in a node home (0600,
	// encrypted with the node's key password when there is one).
	PrivacyKeyFile = "privacy.key"
	// PrivacyPublicKeyFile is the organization's privacy public key, in its
	// organization folder: what an AddOrganization or SetPrivacyKey
	// proposal takes (--privacy-key, --key).
	PrivacyPublicKeyFile = "privacy.pub"
)

// NewOrgPrivacyKey makes an organization's privacy key and writes its
// public key file, dir/PrivacyPublicKeyFile.
func NewOrgPrivacyKey(dir string) (*privacy.PrivateKey, error) {
	key, err := privacy.GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := identity.WritePrivacyPublicKey(filepath.Join(dir, PrivacyPublicKeyFile), key.Public()); err != nil {
		return nil, err
	}
	return key, nil
}

// setOrgPrivacyKey writes pub into a genesis organization.
func setOrgPrivacyKey(o *chain.Organization, pub *privacy.PublicKey) {
	o.PrivacyKey, o.PrivacyKEM = pub.Identity().String(), pub.KEMString()
}

// loadPrivacyKey reads the home's privacy key: the file config.json's
// privacyKey names, or PrivacyKeyFile in the home when it names none. A
// named file must exist; the default one may be missing (nil key: the
// node takes no part in private transactions). It returns the path too.
func (c *HomeConfig) loadPrivacyKey(home string, password []byte) (*privacy.PrivateKey, string, error) {
	name := c.PrivacyKey
	if name == "" {
		name = PrivacyKeyFile
	}
	path := homePath(home, name)
	key, err := identity.LoadPrivacyKey(path, password)
	if errors.Is(err, fs.ErrNotExist) && c.PrivacyKey == "" {
		return nil, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("privacyKey: %w", err)
	}
	return key, path, nil
}

// checkPrivacyKey compares the node's privacy key with its
// organization's key in the registry at the head: a key the registry
// knows as another is refused in one line naming the file and the fix.
// A node without a key, or whose organization (or whose record) the head
// does not know yet, starts, and says so once; a node the head does not
// list is content with any organization's key.
func (n *Node) checkPrivacyKey(st system.StateReader) error {
	key, path := n.cfg.PrivacyKey, n.cfg.PrivacyKeyFile
	if key == nil {
		n.log.Info("No privacy key: this node takes no part in private transactions", "file", path)
		return nil
	}
	reg := system.Read(st)
	id := key.Public().Identity()
	rec, ok := reg.Node(n.self)
	if !ok || rec.Org == "" {
		// A node the head does not list (one of an organization not yet
		// admitted, or the development chain's sealer): its key is right
		// if it is an organization's.
		if org, ok := reg.PrivacyKeyOrg(id); ok {
			n.log.Debug("Privacy key loaded", "org", org, "identity", id)
			return nil
		}
		n.log.Warn("Privacy key loaded, but neither this node nor its key is in the registry yet; it is checked when the node starts registered", "file", path, "identity", id)
		return nil
	}
	want := reg.PrivacyKey(rec.Org)
	switch {
	case want == nil:
		n.log.Warn("Privacy key loaded, but organization "+rec.Org+" has none in the registry: it takes no part in private transactions until a set-privacy-key proposal with its privacy.pub passes",
			"file", path, "identity", id)
		return nil
	case !key.Public().Equal(mustPublicKey(want)):
		head := n.ledger.Head().Number.Uint64()
		return fmt.Errorf("privacy key %s (identity %s) is not organization %s's privacy key in the registry at height %d (identity %s): install the organization's current privacy key there, or propose set-privacy-key with the public key of this one",
			path, id, rec.Org, head, want.Identity())
	}
	n.log.Debug("Privacy key loaded", "org", rec.Org, "identity", id)
	return nil
}

// PrivacyKey is the node's organization privacy key; nil when it has none.
func (n *Node) PrivacyKey() *privacy.PrivateKey { return n.cfg.PrivacyKey }

// mustPublicKey parses a key the registry holds: the registry checked it
// when it was set, so one that does not parse is a broken state.
func mustPublicKey(k system.PrivacyKey) *privacy.PublicKey {
	pub, err := privacy.ParsePublicKey(k)
	if err != nil {
		panic(fmt.Sprintf("node: registry privacy key: %v", err))
	}
	return pub
}
