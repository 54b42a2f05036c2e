package privtx

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

// TestLegacyGroupIDVectors derives the id of every participant list of
// web3js-quorum's keySets.json (testdata/keysets.txt) as its
// generatePrivacyGroup test does: the list is the participants in order,
// the last of them in the privateFrom position.
func TestLegacyGroupIDVectors(t *testing.T) {
	f, err := os.Open("testdata/keysets.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var keys [][]byte
	checked := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch fields[0] {
		case "key":
			if n, err := strconv.Atoi(fields[1]); err != nil || n != len(keys) || len(fields) != 3 {
				t.Fatalf("line %d: key numbers out of order", line)
			}
			keys = append(keys, b64(t, fields[2]))
		case "group":
			want := b64(t, fields[1])
			for _, order := range fields[2:] {
				var participants [][]byte
				for _, c := range order {
					participants = append(participants, keys[c-'0'])
				}
				last := len(participants) - 1
				got := LegacyGroupID(participants[last], participants[:last])
				if !bytes.Equal(got[:], want) {
					t.Fatalf("line %d: participants %s: id %s, want %s", line, order, base64.StdEncoding.EncodeToString(got[:]), fields[1])
				}
				checked++
			}
		default:
			t.Fatalf("line %d: unknown record %q", line, fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if checked != 8653 {
		t.Fatalf("checked %d participant lists, the file has 8653", checked)
	}
}

func TestJavaHashCode(t *testing.T) {
	// Values of java.util.Arrays.hashCode(byte[]).
	for _, c := range []struct {
		b    []byte
		want int32
	}{
		{nil, 1},
		{[]byte{0}, 31},
		{[]byte{1, 2}, 31*(31+1) + 2},
		{[]byte{0xff}, 30},  // the byte is -1
		{[]byte{0x80}, -97}, // the byte is -128
		{bytes.Repeat([]byte{0x7f}, 32), javaHashLoop(bytes.Repeat([]byte{0x7f}, 32))},
	} {
		if got := javaHashCode(c.b); got != c.want {
			t.Errorf("javaHashCode(%x) = %d, want %d", c.b, got, c.want)
		}
	}
	// Wrapping: 32 bytes of 0x7f overflow 32 bits many times.
	if javaHashCode(bytes.Repeat([]byte{0x7f}, 32)) != javaHashLoop(bytes.Repeat([]byte{0x7f}, 32)) {
		t.Fatal("wrapping differs")
	}
}

// javaHashLoop is Arrays.hashCode in 64-bit arithmetic reduced at the end,
// a second way to the same number.
func javaHashLoop(b []byte) int32 {
	h := int64(1)
	for _, c := range b {
		h = (31*h + int64(int8(c))) & 0xffffffff
	}
	return int32(uint32(h))
}

// TestLegacyGroupIDOrder checks the order rules on keys made for them:
// two keys of equal hash keep their order (the client's sort is stable),
// duplicates count once, and privateFrom comes after privateFor.
func TestLegacyGroupIDOrder(t *testing.T) {
	a := bytes.Repeat([]byte{0x10}, KeySize)
	b := bytes.Clone(a) // same hash as a: +1 in one byte, -31 in the next
	b[30]++
	b[31] -= 31
	if javaHashCode(a) != javaHashCode(b) {
		t.Fatal("the test keys do not collide")
	}
	var low []byte // a key of lower hash than a
	for c := 0; c < 256 && low == nil; c++ {
		if k := bytes.Repeat([]byte{byte(c)}, KeySize); javaHashCode(k) < javaHashCode(a) {
			low = k
		}
	}
	if low == nil {
		t.Fatal("no key of lower hash")
	}
	id := func(keys ...[]byte) [32]byte {
		enc, err := rlp.EncodeToBytes(keys)
		if err != nil {
			t.Fatal(err)
		}
		return crypto.Keccak256Hash(enc)
	}
	for _, c := range []struct {
		name string
		from []byte
		for_ [][]byte
		want [32]byte
	}{
		{"equal hash, privateFor order", low, [][]byte{b, a}, id(low, b, a)},
		{"equal hash, other order", low, [][]byte{a, b}, id(low, a, b)},
		{"privateFrom after privateFor", a, [][]byte{b}, id(b, a)},
		{"duplicates once", b, [][]byte{a, a, b, low}, id(low, a, b)},
	} {
		if got := LegacyGroupID(c.from, c.for_); got != c.want {
			t.Errorf("%s: %x, want %x", c.name, got, c.want)
		}
	}
}
