package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	gossh "golang.org/x/crypto/ssh"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/sqlite"
)

func initCommand() *cobra.Command {
	var data, adminKey, adminName string
	cmd := &cobra.Command{
		Use:   "init --data DIR --admin-key FILE.pub [--admin-name NAME]",
		Short: "Create a data directory: database, host key and the first admin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if data == "" || adminKey == "" {
				return errors.New("--data and --admin-key are required")
			}
			return runInit(cmd.Context(), data, adminKey, adminName, cmd)
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "data directory")
	cmd.Flags().StringVar(&adminKey, "admin-key", "", "public key file of the first admin")
	cmd.Flags().StringVar(&adminName, "admin-name", "admin", "name of the first admin")
	return cmd
}

func runInit(ctx context.Context, data, adminKey, adminName string, cmd *cobra.Command) error {
	data, err := filepath.Abs(data)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(adminKey)
	if err != nil {
		return fmt.Errorf("read admin key: %w", err)
	}
	pub, comment, _, _, err := gossh.ParseAuthorizedKey(raw)
	if err != nil {
		return fmt.Errorf("parse admin key %s: %w", adminKey, err)
	}
	// 0711: app users must traverse the data dir to reach their releases,
	// but may not list it.
	if err := os.MkdirAll(data, 0o711); err != nil {
		return err
	}
	if err := os.Chmod(data, 0o711); err != nil {
		return err
	}
	if err := ensureHostKey(filepath.Join(data, "ssh_host_ed25519_key")); err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, filepath.Join(data, "conductor.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := db.FindUser(ctx, adminName)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		u, err = db.CreateUser(ctx, adminName, true)
	}
	if err != nil {
		return err
	}
	if !u.Admin {
		return fmt.Errorf("user %q exists and is not an admin", adminName)
	}
	fp := gossh.FingerprintSHA256(pub)
	owner, err := db.FindUserByFingerprint(ctx, fp)
	switch {
	case err == nil && owner.ID != u.ID:
		return fmt.Errorf("key %s already belongs to %s", fp, owner.Name)
	case err == nil:
	case conductor.ErrorCode(err) == conductor.ENOTFOUND:
		line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pub)))
		if comment != "" {
			line += " " + comment
		}
		if _, err := db.AddKey(ctx, u.ID, fp, line); err != nil {
			return err
		}
	default:
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Initialized %s; admin %q with key %s\n", data, adminName, fp)
	return nil
}

// ensureHostKey creates an ed25519 host key once; gliderlabs would make a
// new one each start, and clients would then refuse to connect.
func ensureHostKey(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := gossh.MarshalPrivateKey(priv, "conductor host key")
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}

func loadHostKey(path string) (gossh.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read host key (did you run conductor init?): %w", err)
	}
	return gossh.ParsePrivateKey(raw)
}
