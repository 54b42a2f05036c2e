package keystore

import (
	"bytes"
	"fmt"
	"os"
)

// EnvPassword is the environment variable that holds the keystore
// password when no password file is given.
const EnvPassword = "CHARTER_KEYSTORE_PASSWORD"

// ReadPassword returns the keystore password: the first line of file
// when file is not "", else the value of EnvPassword as getenv reads it
// (os.Getenv when nil), else nil (Open then refuses a store that has
// keys, and Add refuses to write one). flagName is the flag that gave
// file, for the errors ("--keystore.password-file", "--password-file").
func ReadPassword(flagName, file string, getenv func(string) string) ([]byte, error) {
	if file == "" {
		if getenv == nil {
			getenv = os.Getenv
		}
		if v := getenv(EnvPassword); v != "" {
			return []byte(v), nil
		}
		return nil, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return nil, fmt.Errorf("%s %s: the first line is empty; write the keystore password on it", flagName, file)
	}
	return bytes.Clone(line), nil
}
