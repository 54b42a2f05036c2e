package main

import "syscall"

// nodeProcAttr puts a testnet node in its own process group and asks the
// kernel to send it SIGTERM if the testnet process dies.
func nodeProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
