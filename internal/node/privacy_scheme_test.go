package node

import (
	"context"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/privacy"
	"github.com/charter-ledger/charter/internal/privacy/privtx"
)

func TestSchemeRefusal(t *testing.T) {
	for _, c := range []struct {
		want privacy.Scheme
		env  []byte
		ok   bool
	}{
		{privacy.SchemeHybrid, []byte{1, 1}, true},
		{privacy.SchemeX25519, []byte{2, 1}, true},
		{privacy.SchemeHybrid, []byte{2, 1}, false},
		{privacy.SchemeX25519, []byte{1, 1}, false},
		{privacy.SchemeHybridSession, []byte{3, 1}, true},
		{privacy.SchemeHybridSession, []byte{1, 1}, false},
		{privacy.SchemeX25519Session, []byte{2, 1}, false},
		{privacy.SchemeHybrid, []byte{7}, false},
		{privacy.SchemeHybrid, nil, true}, // Open refuses it, with its reason
	} {
		if got := schemeRefusal(c.want, c.env); (got == "") != c.ok {
			t.Errorf("schemeRefusal(%s, %x) = %q", c.want, c.env, got)
		}
	}
}

// TestPrivateEnvelopeScheme: on a network of each scheme, private
// transactions sealed by the node apply (many in a block, opened in
// parallel, the sender's own taken from its memo), and a payload sealed
// with the other scheme is rejected by the private state, with the
// reason, while the group goes on.
func TestPrivateEnvelopeScheme(t *testing.T) {
	for _, scheme := range privacy.Schemes {
		t.Run(scheme.String(), func(t *testing.T) {
			pkey, err := privacy.GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			pn := startPrivNodeSpec(t, t.TempDir(), pkey, func(s *chain.Spec) { s.PrivacyEnvelope = scheme.String() })
			me := pkey.Public().Identity()
			ctx := context.Background()
			group, err := pn.priv.CreateGroup(ctx, [][]byte{me[:]}, "g", "")
			if err != nil {
				t.Fatal(err)
			}
			alice := pn.accts[0].Key
			r := pn.privateReceipt(t, pn.sendPrivate(t, alice, group, 0, nil, token.DeployData(big.NewInt(1_000_000))))
			if r.Status != types.ReceiptStatusSuccessful {
				t.Fatalf("deployment: status %d, rejected %q", r.Status, r.Rejected)
			}
			tokenAddr := r.ContractAddress
			const transfers = 24
			var markers []common.Hash
			for i := 0; i < transfers; i++ {
				markers = append(markers, pn.sendPrivate(t, alice, group, uint64(1+i), &tokenAddr, token.TransferData(common.Address{byte(i + 1)}, big.NewInt(1))))
			}
			for i, m := range markers {
				if r := pn.privateReceipt(t, m); r.Status != types.ReceiptStatusSuccessful || r.Rejected != "" {
					t.Fatalf("transfer %d: status %d, rejected %q", i, r.Status, r.Rejected)
				}
			}
			if n := pn.priv.sealed.len(); n != 0 {
				t.Fatalf("the sealed memo holds %d entries after their markers applied", n)
			}

			// A payload sealed with the other scheme, ordered by a marker.
			other := privacy.Schemes[(int(scheme))%len(privacy.Schemes)] // the next one
			tx := &privtx.Tx{Nonce: transfers + 1, GasPrice: new(big.Int), Gas: 100_000, To: &tokenAddr, Value: new(big.Int),
				Data: token.TransferData(common.Address{0xee}, big.NewInt(1)), PrivateFrom: me[:], PrivacyGroupID: group[:], Restriction: privtx.Restricted}
			if err := privtx.SignTx(tx, big.NewInt(1337), alice); err != nil {
				t.Fatal(err)
			}
			raw, _ := tx.Encode()
			env, err := privacy.SealWith(other, []*privacy.PublicKey{pkey.Public()}, raw)
			if err != nil {
				t.Fatal(err)
			}
			hash, _ := privacy.ContentHash(env)
			if err := pn.priv.store.PutPayload(group, hash, env); err != nil {
				t.Fatal(err)
			}
			marker, err := pn.priv.send.call(ctx, "privateMarker", true, [32]byte(group), [32]byte(hash), []string{})
			if err != nil {
				t.Fatal(err)
			}
			rec := pn.privateReceipt(t, marker)
			if rec.Status != types.ReceiptStatusFailed || !strings.Contains(rec.Rejected, "envelope scheme "+other.String()) {
				t.Fatalf("a payload sealed with %s on a %s network: status %d, rejected %q", other, scheme, rec.Status, rec.Rejected)
			}
			// The group goes on: the same nonce, sealed by the node, applies.
			if r := pn.privateReceipt(t, pn.sendPrivate(t, alice, group, transfers+1, &tokenAddr, token.TransferData(common.Address{0xee}, big.NewInt(1)))); r.Status != types.ReceiptStatusSuccessful {
				t.Fatalf("after the refused payload: status %d, rejected %q", r.Status, r.Rejected)
			}
		})
	}
}
