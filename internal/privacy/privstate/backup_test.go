package privstate

import (
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

// Backup copies every group's database and the tombstones while the store
// is open; the copy opens as a store with the same heads, roots, payloads
// and purges, and a group purged is still purged.
func TestBackupOpensAsTheStore(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 12)
	s := openStore(t, t.TempDir(), c, Options{MaxOpenGroups: 1}) // one open at a time: the backup opens the others
	defer s.Close()
	markedGroup(t, s, c)
	resB := newTokenScenario(t).run(t, s, c, groupB)
	payload := append([]byte("envelope:"), secret...)
	marked := crypto.Keccak256Hash(payload)
	if got, err := s.Payload(groupA, marked); err != nil || string(got) != string(payload) {
		t.Fatalf("control: group A's payload %q (%v)", got, err)
	}
	dir := filepath.Join(t.TempDir(), "private")
	if err := s.Backup(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Backup(dir); err == nil {
		t.Fatal("a backup into an existing folder succeeded")
	}
	if err := s.Purge(groupA, 11); err != nil { // after the backup: the copy keeps group A
		t.Fatal(err)
	}
	b := openStore(t, dir, c, Options{})
	defer b.Close()
	if n, root, err := b.Head(groupB); err != nil || n != 9 || root != resB[9].Root {
		t.Fatalf("group B in the backup: head %d %s (%v), want 9 %s", n, root, err, resB[9].Root)
	}
	if got, err := b.Payload(groupA, marked); err != nil || string(got) != string(payload) {
		t.Fatalf("group A's payload in the backup: %q (%v)", got, err)
	}

	// A backup after the purge holds the tombstone, not the group.
	dir2 := filepath.Join(t.TempDir(), "private")
	if err := s.Backup(dir2); err != nil {
		t.Fatal(err)
	}
	b2 := openStore(t, dir2, c, Options{})
	defer b2.Close()
	if h, purged := b2.Purged(groupA); !purged || h != 11 {
		t.Fatalf("group A in the second backup: purged %v at %d", purged, h)
	}
	if _, _, err := b2.Head(groupB); err != nil {
		t.Fatal(err)
	}
}
