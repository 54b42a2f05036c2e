// Package p2p is the network between Charter nodes: mutually
// authenticated TLS 1.3 connections, a signed handshake binding each
// connection to a consensus NodeID, length-prefixed message framing, and a
// handler registry by message type.
//
// # Admission
//
// A connection becomes a peer only if, in order:
//
//  1. TLS 1.3 completes with ALPN "charter/1", and the peer's certificate
//     chain passes identity.TrustStore.Verify with role node (known
//     organization root, within validity, right key usage, not revoked,
//     organization active). Go's TLS is told to skip its own verification
//     (no hostnames: peers are known by certificate) and VerifyConnection
//     calls the trust store, which is what enforces revocation.
//  2. Each side sends a hello (see handshake.go): protocol version, chain
//     id, genesis hash, NodeID and a secp256k1 signature by the node key
//     over the connection's exported keying material. A mismatch, a bad
//     or replayed signature, a peer claiming to be this node, or a NodeID
//     other than the static peer list expects closes the connection.
//  3. Config.Authorize, when set, accepts the peer (the node checks the
//     registry: this certificate belongs to this NodeID).
//  4. Dedupe: one connection per pair. When both nodes dial each other,
//     both keep the connection dialed by the lower NodeID.
//
// Every refusal is counted by its reason (Stats.Refused; the reasons are
// a fixed set, RefusalReasons) and logged in one line naming the reason,
// but an inbound refusal at most once per RefusalLogInterval (a minute)
// per source and reason: the source is the node id the peer claimed once
// its hello named one, else its IP; the next line says how many were
// suppressed meanwhile, and at most RefusalLogSources sources are
// remembered. A loop of refused connections thus costs a few lines, not
// one each. A static peer that keeps failing is logged once per change of
// its reason. Connected peers are verified again every RefreshInterval
// and at once when the trust store changes, so a revoked certificate or
// an inactive organization is disconnected within one interval.
//
// # Use
//
//	tr, err := p2p.New(p2p.Config{
//		ListenAddr:  "127.0.0.1:30303",
//		ChainID:     spec.ChainID(),
//		GenesisHash: genesis.Hash(),
//		NodeKey:     nodeKey,  // identity.LoadNodeKey
//		Certificate: tlsCert,  // identity.LoadTLSCertificate
//		Trust:       trust,    // identity.NewTrustStore(genesis orgs)
//		StaticPeers: []p2p.PeerAddr{{Addr: "127.0.0.1:30304", ID: peerID}},
//		OnPeerEvent: func(ev p2p.PeerEvent) { ... },
//	}, logger)
//	tr.Handle(MsgConsensus, func(from p2p.NodeID, payload []byte) { engine.HandleMessage(from, payload) })
//	err = tr.Start()
//	tr.Send(to, MsgConsensus, payload)   // never blocks; drops and counts on a full queue
//	tr.Broadcast(MsgTxs, payload)
//	tr.Peers(); tr.Stats(); tr.Close()
//
// Message types are bytes chosen by the users of the package, from
// FirstUserType (16) up; lower ones are the transport's (0 handshake,
// 1 ping). A message of a type without a handler is dropped, counted and
// logged at debug level.
//
// # Limits
//
// Every queue and loop is bounded: MaxMessageBytes per frame (a larger
// announced frame closes the connection before anything is allocated),
// SendQueueLen messages per peer, a receive token bucket per connection in
// bytes and messages (a fast sender is read slowly; TCP pushes back),
// MaxPeers, MaxPendingHandshakes, HandshakeTimeout, IdleTimeout,
// WriteTimeout, and a dial backoff between DialBackoffMin and
// DialBackoffMax with jitter.
package p2p
