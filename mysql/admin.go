package mysql

import (
	"fmt"
	"strings"
)

// Conductor's administrator needs, and AdminGrants gives it, only what
// Create and Drop do: CREATE USER (which also drops users), reading which
// users exist (the User and Host columns of mysql.user), and on every
// database an app can have — never on the mysql schema, whose tables hold
// the server's accounts and privileges — all database privileges WITH
// GRANT OPTION, which CREATE DATABASE, DROP DATABASE and granting the
// app's user its database take. No global privilege like SUPER, FILE,
// PROCESS, RELOAD or SHUTDOWN.
//
// MariaDB has no way to leave one database out of a wildcard grant, so the
// databases are covered by LIKE patterns that no name of the mysql schema
// matches: a% to l%, then m's names letter by letter around "mysql", and
// so on. Databases Conductor makes are named after apps (a letter, then
// a-z, 0-9, - and _).

// protectedSchemas are the databases the administrator gets no right on.
var protectedSchemas = []string{"mysql"}

const (
	firstChars = "abcdefghijklmnopqrstuvwxyz"
	nameChars  = firstChars + "0123456789-_"
)

// adminPatterns are the database patterns (as GRANT takes them, escaped
// for LIKE) covering every name Conductor may give a database but the
// protected ones.
func adminPatterns() []string {
	var out []string
	var cover func(prefix, chars string)
	cover = func(prefix, chars string) {
		for _, c := range chars {
			p := prefix + string(c)
			under := false // a protected name starts with p
			for _, s := range protectedSchemas {
				if strings.HasPrefix(s, p) {
					under = true
				}
			}
			if !under {
				out = append(out, likeEscape(p)+"%")
				continue
			}
			if !isProtected(p) {
				out = append(out, likeEscape(p)) // exactly p
			}
			cover(p, nameChars)
		}
	}
	cover("", firstChars)
	return out
}

func isProtected(name string) bool {
	for _, s := range protectedSchemas {
		if s == name {
			return true
		}
	}
	return false
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`).Replace(s)
}

// AdminGrants are the statements that give user@host what Conductor's
// administrator needs (the account must exist).
func AdminGrants(user, host string) []string {
	acct := quoteString(user) + "@" + quoteString(host)
	stmts := []string{
		"GRANT CREATE USER ON *.* TO " + acct,
		"GRANT SELECT (User, Host) ON mysql.user TO " + acct,
	}
	for _, p := range adminPatterns() {
		stmts = append(stmts, fmt.Sprintf("GRANT ALL PRIVILEGES ON %s.* TO %s WITH GRANT OPTION", quoteIdent(p), acct))
	}
	return stmts
}

// AdminSetup are the statements that create (or reset the password of)
// Conductor's administrator user@localhost with AdminGrants, for a
// server's root to run, e.g. with the mariadb client. The password goes as
// its hash. user and password must be plain (letters, digits, - and _).
func AdminSetup(user, password string) ([]string, error) {
	for _, s := range []string{user, password} {
		if s == "" || strings.Trim(s, firstChars+strings.ToUpper(firstChars)+"0123456789-_") != "" {
			return nil, fmt.Errorf("mysql administrator: %q is not plain letters, digits, - and _", user)
		}
	}
	acct := account(user)
	hash := quoteString(nativePasswordHash(password))
	stmts := []string{
		"CREATE USER IF NOT EXISTS " + acct + " IDENTIFIED BY PASSWORD " + hash,
		"ALTER USER " + acct + " IDENTIFIED BY PASSWORD " + hash,
	}
	return append(stmts, AdminGrants(user, UserHost)...), nil
}
