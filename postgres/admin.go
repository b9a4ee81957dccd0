package postgres

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// AdminSetup is a psql script that creates Conductor's administrator role
// (or resets its password): LOGIN CREATEDB CREATEROLE and nothing more,
// what a managed PostgreSQL's master user has, which is all Create and
// Drop need (joinRole). The password goes as its SCRAM verifier, so the
// server's log never holds it. The script ends by printing the server's
// port. role and password must be plain (letters, digits, - and _).
func AdminSetup(role, password string) (string, error) {
	const plain = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
	for _, s := range []string{role, password} {
		if s == "" || strings.Trim(s, plain) != "" {
			return "", fmt.Errorf("postgres administrator: %q is not plain letters, digits, - and _", role)
		}
	}
	verifier, err := scramVerifier(password)
	if err != nil {
		return "", err
	}
	ident := pgx.Identifier{role}.Sanitize()
	return fmt.Sprintf(`SELECT 'CREATE ROLE %[1]s' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %[2]s)\gexec
ALTER ROLE %[1]s WITH LOGIN CREATEDB CREATEROLE NOSUPERUSER NOREPLICATION NOBYPASSRLS PASSWORD %[3]s;
SHOW port;
`, ident, quoteLiteral(role), quoteLiteral(verifier)), nil
}
