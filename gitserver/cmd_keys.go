package gitserver

import (
	"bytes"
	"crypto/rsa"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	gossh "golang.org/x/crypto/ssh"

	"github.com/hasadna/conductor"
)

// MinRSABits is the smallest RSA key keys:add accepts.
const MinRSABits = 2048

// maxKeyInput bounds what keys:add reads from stdin: the largest OpenSSH
// public key line (RSA 16384) is about 2.8 KB.
const maxKeyInput = 16 << 10

// acceptedKeyTypes are the key algorithms keys:add takes. DSA (1024-bit by
// definition) and certificates are not among them.
var acceptedKeyTypes = map[string]bool{
	gossh.KeyAlgoRSA:        true,
	gossh.KeyAlgoED25519:    true,
	gossh.KeyAlgoECDSA256:   true,
	gossh.KeyAlgoECDSA384:   true,
	gossh.KeyAlgoECDSA521:   true,
	gossh.KeyAlgoSKED25519:  true,
	gossh.KeyAlgoSKECDSA256: true,
}

// ParsePublicKey reads one OpenSSH public key (an authorized_keys line
// without options) and refuses anything else: garbage, several keys,
// options, certificates, DSA and RSA keys under MinRSABits. It returns the
// key and its normalized line, with a printable comment.
func ParsePublicKey(data []byte) (gossh.PublicKey, string, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, "", conductor.Errorf(conductor.EINVALID, "no public key on stdin: use keys:add <user> < key.pub")
	}
	if len(data) > maxKeyInput {
		return nil, "", conductor.Errorf(conductor.EINVALID, "input is larger than any public key (%d bytes)", len(data))
	}
	if f := bytes.Fields(data); string(f[0]) == "ssh-dss" { // x/crypto cannot even parse these
		return nil, "", conductor.Errorf(conductor.EINVALID, "DSA keys are too weak: use ed25519, ECDSA or RSA of %d bits or more", MinRSABits)
	}
	pub, comment, options, rest, err := gossh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, "", conductor.Errorf(conductor.EINVALID, "not an OpenSSH public key (want a line like \"ssh-ed25519 AAAA... you@host\")")
	}
	if len(options) > 0 {
		return nil, "", conductor.Errorf(conductor.EINVALID, "key options (%s) are not accepted: give the bare public key", truncate(strings.Join(options, ",")))
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, "", conductor.Errorf(conductor.EINVALID, "more than one key on stdin: add one key at a time")
	}
	if _, ok := pub.(*gossh.Certificate); ok || !acceptedKeyTypes[pub.Type()] {
		return nil, "", conductor.Errorf(conductor.EINVALID, "key type %s is not accepted: use ed25519, ECDSA or RSA of %d bits or more", truncate(pub.Type()), MinRSABits)
	}
	if pub.Type() == gossh.KeyAlgoRSA {
		ck, ok := pub.(gossh.CryptoPublicKey)
		if !ok {
			return nil, "", conductor.Errorf(conductor.EINVALID, "unreadable RSA key")
		}
		rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok || rk.N.BitLen() < MinRSABits {
			bits := 0
			if ok {
				bits = rk.N.BitLen()
			}
			return nil, "", conductor.Errorf(conductor.EINVALID, "RSA key of %d bits is too weak: use %d bits or more, or ed25519", bits, MinRSABits)
		}
	}
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pub)))
	if c := printable(comment, 100); c != "" {
		line += " " + c
	}
	return pub, line, nil
}

// printable keeps the printable characters of s, at most n of them: a key
// comment is shown in listings and must not carry terminal escapes.
func printable(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if n == 0 {
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			n--
		}
	}
	return strings.TrimSpace(b.String())
}

func (s *Server) keysCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List users and their SSH keys (admin)",
		Args:  exactArgs(0, "keys [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			users, err := s.store.ListUsers(ctx)
			if err != nil {
				return err
			}
			keys, err := s.store.ListKeys(ctx)
			if err != nil {
				return err
			}
			byUser := map[int64][]*conductor.Key{}
			for _, k := range keys {
				byUser[k.UserID] = append(byUser[k.UserID], k)
			}
			type row struct {
				User        string     `json:"user"`
				Role        string     `json:"role"`
				Fingerprint string     `json:"fingerprint,omitempty"`
				Type        string     `json:"type,omitempty"`
				Comment     string     `json:"comment,omitempty"`
				Added       *time.Time `json:"added,omitempty"`
			}
			rows := []row{}
			for _, u := range users {
				role := roleName(u)
				if len(byUser[u.ID]) == 0 {
					rows = append(rows, row{User: u.Name, Role: role})
				}
				for _, k := range byUser[u.ID] {
					f := strings.SplitN(k.PublicKey, " ", 3)
					r := row{User: u.Name, Role: role, Fingerprint: k.Fingerprint, Type: f[0]}
					if len(f) == 3 {
						r.Comment = f[2]
					}
					added := k.CreatedAt
					r.Added = &added
					rows = append(rows, r)
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			for _, r := range rows {
				fmt.Fprintf(cmd.OutOrStdout(), "%-16s %-9s %s %s %s\n", r.User, r.Role, orNone(r.Fingerprint), r.Type, r.Comment)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func roleName(u *conductor.User) string {
	if u.Admin {
		return "admin"
	}
	return "developer"
}

func (s *Server) keysAddCommand() *cobra.Command {
	var admin bool
	cmd := &cobra.Command{
		Use:   "keys:add <user> [--admin] < key.pub",
		Short: "Add an SSH public key (read from stdin) to a user, creating the user if needed (admin)",
		Long: "Add an OpenSSH public key, read from stdin, to a user; a new user is a developer,\n" +
			"or an admin with --admin (which also promotes an existing user). Developers reach only\n" +
			"the apps granted to them with access:grant.",
		Args: exactArgs(1, "keys:add <user> [--admin] < key.pub"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := args[0]
			if err := conductor.ValidateUserName(name); err != nil {
				return err
			}
			data, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxKeyInput+1))
			if err != nil {
				return fmt.Errorf("read key: %w", err)
			}
			pub, line, err := ParsePublicKey(data)
			if err != nil {
				return err
			}
			fp := gossh.FingerprintSHA256(pub)
			auditFromContext(ctx).Detail = name + " " + fp
			if admin {
				auditFromContext(ctx).Detail += " --admin"
			}
			u, _, err := s.store.AddUserKey(ctx, name, admin, fp, line)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Added key %s to %s (%s)\n", fp, u.Name, roleName(u))
			return nil
		},
	}
	cmd.Flags().BoolVar(&admin, "admin", false, "make the user an admin")
	return cmd
}

func (s *Server) keysRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "keys:remove <user|fingerprint>",
		Short: "Remove one key (by fingerprint) or a user with all their keys and grants (admin)",
		Args:  exactArgs(1, "keys:remove <user|SHA256:fingerprint>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			arg := args[0]
			if strings.HasPrefix(arg, "SHA256:") {
				if err := conductor.ValidateFingerprint(arg); err != nil {
					return err
				}
				if _, err := s.store.RemoveKey(ctx, arg); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Removed key %s\n", arg)
				return nil
			}
			if err := conductor.ValidateUserName(arg); err != nil {
				return err
			}
			if err := s.store.RemoveUser(ctx, arg); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed user %s with their keys and grants\n", arg)
			return nil
		},
	}
}
