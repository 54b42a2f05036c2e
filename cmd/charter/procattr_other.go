//go:build !linux

package main

import "syscall"

// nodeProcAttr puts a testnet node in its own process group.
func nodeProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
