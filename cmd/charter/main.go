package main
import (
 _ "github.com/ethereum/go-ethereum/core"
 _ "github.com/ethereum/go-ethereum/rpc"
 _ "github.com/ethereum/go-ethereum/ethdb/pebble"
 _ "github.com/ethereum/go-ethereum/triedb"
 _ "go.etcd.io/raft/v3"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/anishathalye/porcupine"
 _ "github.com/tyler-smith/go-bip39"
 _ "github.com/btcsuite/btcd/btcutil/hdkeychain"
)
func main(){}
