package ledger

import "testing"

func TestSizedCacheBounds(t *testing.T) {
	c := newSizedCache(4, 100, func(v int) int { return v })
	for k := uint64(1); k <= 4; k++ {
		c.Add(k, 10)
	}
	if c.Len() != 4 || c.Bytes() != 40 {
		t.Fatalf("after 4 adds: %d entries, %d bytes; want 4, 40", c.Len(), c.Bytes())
	}
	c.Add(5, 10) // the count bound drops the oldest
	if _, ok := c.Get(1); ok || c.Len() != 4 || c.Bytes() != 40 {
		t.Fatalf("count bound: entry 1 kept=%v, %d entries, %d bytes", ok, c.Len(), c.Bytes())
	}
	c.Get(2)     // 2 is now the most recent
	c.Add(6, 75) // the count bound drops 3, the byte bound 4: 5+2+6 is 95 bytes
	if c.Bytes() != 95 {
		t.Fatalf("%d bytes, want 95", c.Bytes())
	}
	for _, k := range []uint64{2, 5, 6} {
		if _, ok := c.Get(k); !ok {
			t.Fatalf("entry %d dropped; want the most recent kept", k)
		}
	}
	for _, k := range []uint64{3, 4} {
		if _, ok := c.Get(k); ok {
			t.Fatalf("entry %d kept past the byte bound", k)
		}
	}
	c.Add(7, 101) // above the bound alone: not kept, nothing dropped
	if _, ok := c.Get(7); ok || c.Len() != 3 || c.Bytes() != 95 {
		t.Fatalf("oversized value: kept=%v, %d entries, %d bytes; want not kept, 3, 95", ok, c.Len(), c.Bytes())
	}
	c.Add(6, 5) // replacing an entry replaces its size
	if c.Bytes() != 25 {
		t.Fatalf("after replacing 6: %d bytes, want 25", c.Bytes())
	}
	c.Remove(5)
	if c.Bytes() != 15 || c.Len() != 2 {
		t.Fatalf("after removing 5: %d entries, %d bytes; want 2, 15", c.Len(), c.Bytes())
	}
}
