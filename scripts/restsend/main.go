// Command restsend measures contract sends signed by node-held keys
// (POST /api/v1/contracts/{contract}/send/{method}) against the same
// calls sent as transactions signed beforehand (eth_sendRawTransaction),
// on one node: sends per second accepted, sends per second to the last
// receipt, and the latency of each request to its acceptance (the 202 or
// the hash).
//
//	go run ./scripts/restsend --api https://127.0.0.1:8545 --ca net/orgs/org0/ca.crt \
//	  --token-file token --mode rest --keys payments --n 4000 --c 16
//	go run ./scripts/restsend ... --mode rpc --key-files net/orgs/org0/admin-account.key
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/identity"
)

const storeABI = `[{"type":"function","name":"store","inputs":[{"name":"v","type":"uint256"}],"outputs":[]}]`

func main() {
	api := flag.String("api", "https://127.0.0.1:8545", "the node's API")
	caFile := flag.String("ca", "", "CA certificate of the node's TLS")
	tokenFile := flag.String("token-file", "", "bearer token, first line")
	mode := flag.String("mode", "rest", "rest (node-held keys) or rpc (eth_sendRawTransaction, signed beforehand)")
	keys := flag.String("keys", "payments", "rest: node-held key ids, comma-separated, used in turn")
	keyFiles := flag.String("key-files", "", "rpc: key files of the sending accounts, comma-separated")
	chainID := flag.Int64("chain-id", 1337, "rpc: the chain id")
	contract := flag.String("contract", "0x00000000000000000000000000000000000000aa", "the contract called")
	n := flag.Int("n", 4000, "sends")
	c := flag.Int("c", 16, "concurrent senders")
	gas := flag.Uint64("gas", 50000, "gas of each send (0: rest estimates it)")
	flag.Parse()

	tr := &http.Transport{MaxIdleConnsPerHost: *c * 2}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			log.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	hc := &http.Client{Timeout: 60 * time.Second, Transport: tr}
	token := ""
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			log.Fatal(err)
		}
		token = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	}
	post := func(path string, body []byte) (int, []byte, error) {
		req, _ := http.NewRequest("POST", *api+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, b, err
	}
	rpc := func(method string, params ...any) (json.RawMessage, error) {
		body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
		st, b, err := post("/", body)
		if err != nil {
			return nil, err
		}
		var r struct {
			Result json.RawMessage
			Error  *struct{ Message string }
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%d %s", st, b)
		}
		if r.Error != nil {
			return nil, fmt.Errorf("%s", r.Error.Message)
		}
		return r.Result, nil
	}
	selector := crypto.Keccak256([]byte("store(uint256)"))[:4]
	calldata := func(i int) []byte {
		return append(append([]byte{}, selector...), common.LeftPadBytes(big.NewInt(int64(i)).Bytes(), 32)...)
	}

	// The requests, made before the clock starts.
	bodies := make([][]byte, *n)
	path := ""
	switch *mode {
	case "rest":
		path = "/api/v1/contracts/" + *contract + "/send/store"
		ids := strings.Split(*keys, ",")
		for i := range bodies {
			req := map[string]any{"key": ids[i%len(ids)], "abi": json.RawMessage(storeABI), "args": []int{i}}
			if *gas != 0 {
				req["gas"] = *gas
			}
			bodies[i], _ = json.Marshal(req)
		}
	case "rpc":
		path = "/"
		var privs []*ecdsa.PrivateKey
		for _, f := range strings.Split(*keyFiles, ",") {
			k, err := identity.LoadNodeKey(f, nil)
			if err != nil {
				log.Fatal(err)
			}
			privs = append(privs, k)
		}
		signer := types.LatestSignerForChainID(big.NewInt(*chainID))
		to := common.HexToAddress(*contract)
		nonces := make([]uint64, len(privs))
		for j, k := range privs {
			raw, err := rpc("eth_getTransactionCount", crypto.PubkeyToAddress(k.PublicKey), "pending")
			if err != nil {
				log.Fatal(err)
			}
			var q hexutil.Uint64
			json.Unmarshal(raw, &q)
			nonces[j] = uint64(q)
		}
		for i := range bodies {
			j := i % len(privs)
			tx, err := types.SignNewTx(privs[j], signer, &types.DynamicFeeTx{ChainID: big.NewInt(*chainID), Nonce: nonces[j],
				GasTipCap: big.NewInt(0), GasFeeCap: big.NewInt(1_000_000_000), Gas: *gas, To: &to, Data: calldata(i)})
			if err != nil {
				log.Fatal(err)
			}
			nonces[j]++
			raw, _ := tx.MarshalBinary()
			bodies[i], _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": []string{hexutil.Encode(raw)}})
		}
	default:
		log.Fatalf("--mode %q: rest or rpc", *mode)
	}

	lat := make([]time.Duration, *n)
	hashes := make([]string, *n)
	var failures sync.Map
	next := make(chan int, *n)
	for i := 0; i < *n; i++ {
		next <- i
	}
	close(next)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				st, b, err := post(path, bodies[i])
				lat[i] = time.Since(t0)
				var r struct {
					Hash   string `json:"hash"`
					Result string `json:"result"`
				}
				json.Unmarshal(b, &r)
				hashes[i] = r.Hash + r.Result
				if err != nil || (st != 200 && st != 202) || hashes[i] == "" {
					failures.Store(i, fmt.Sprintf("%d %v %s", st, err, b))
				}
			}
		}()
	}
	wg.Wait()
	accepted := time.Since(start)
	nfail := 0
	failures.Range(func(k, v any) bool {
		if nfail < 3 {
			log.Printf("send %v: %v", k, v)
		}
		nfail++
		return true
	})
	// Every send is final when each sender's last one is (nonces in order).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := *n - 1; i >= 0 && i >= *n-*c*4; i-- {
		if hashes[i] == "" {
			continue
		}
		for ctx.Err() == nil {
			raw, err := rpc("eth_getTransactionReceipt", hashes[i])
			if err == nil && string(raw) != "null" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	final := time.Since(start)
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("mode=%s sends=%d senders=%d failed=%d accepted/s=%.0f final/s=%.0f p50=%v p99=%v (request to acceptance)\n",
		*mode, *n, *c, nfail, float64(*n)/accepted.Seconds(), float64(*n)/final.Seconds(),
		pct(0.5).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond))
}
