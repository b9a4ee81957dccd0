package conductor

import (
	"context"
	"fmt"
)

// The git services, as operations in Permissions.
const (
	OpFetch = "git-upload-pack"
	OpPush  = "git-receive-pack"
)

// Permission is what one operation needs.
type Permission struct {
	Level   AccessLevel // the least level that may do it
	PerApp  bool        // it acts on one app: the level is the user's on that app
	Changes bool        // it changes state, so it goes into the audit trail
}

// Permissions is the one table of who may do what over SSH, git services
// and commands alike, read by Authorize. An operation missing here is
// refused to everyone, so a new command must be added before it can run.
// Levels: any user with a key has ReadOnly on the server, a developer has
// ReadWrite on the apps granted to them, an admin has Admin everywhere.
var Permissions = map[string]Permission{
	OpFetch: {Level: ReadOnly, PerApp: true},
	OpPush:  {Level: ReadWrite, PerApp: true, Changes: true},

	"help":   {Level: ReadOnly},
	"whoami": {Level: ReadOnly},
	"apps":   {Level: ReadOnly},

	"apps:create":  {Level: Admin, Changes: true},
	"apps:destroy": {Level: Admin, PerApp: true, Changes: true},
	"apps:info":    {Level: ReadWrite, PerApp: true},
	"apps:get":     {Level: ReadWrite, PerApp: true},
	// Timeouts bound how long an app holds one of its host's build slots:
	// the host's resources, so the admin's (like ps:limit).
	"apps:set":       {Level: Admin, PerApp: true, Changes: true},
	"deploys":        {Level: ReadWrite, PerApp: true},
	"releases":       {Level: ReadWrite, PerApp: true},
	"deploy":         {Level: ReadWrite, PerApp: true, Changes: true},
	"rollback":       {Level: ReadWrite, PerApp: true, Changes: true},
	"deploys:cancel": {Level: ReadWrite, PerApp: true, Changes: true},

	"config":       {Level: ReadWrite, PerApp: true},
	"config:get":   {Level: ReadWrite, PerApp: true},
	"config:set":   {Level: ReadWrite, PerApp: true, Changes: true},
	"config:unset": {Level: ReadWrite, PerApp: true, Changes: true},
	"logs":         {Level: ReadWrite, PerApp: true},

	// Config files: stored, listed and removed like config vars; their
	// content is read back by admins only (developers' code reads it in
	// the release, as the app user).
	"config:file":        {Level: ReadWrite, PerApp: true, Changes: true},
	"config:files":       {Level: ReadWrite, PerApp: true},
	"config:file:remove": {Level: ReadWrite, PerApp: true, Changes: true},
	"config:file:get":    {Level: Admin, PerApp: true},

	// Databases take room on a shared server and db:destroy drops data:
	// adding and dropping them is the admin's, like apps:create and
	// apps:destroy. A developer sees the list (never a password: the app's
	// own environment has those, which run shows them anyway).
	"db":         {Level: ReadWrite, PerApp: true},
	"db:list":    {Level: ReadWrite, PerApp: true},
	"db:create":  {Level: Admin, PerApp: true, Changes: true},
	"db:destroy": {Level: Admin, PerApp: true, Changes: true},
	// Backups: a developer may take one and list them (they read the
	// app's own data). Restoring overwrites data, and a schedule keeps
	// files on the host and deletes old ones: the admin's.
	"db:backup":           {Level: ReadWrite, PerApp: true, Changes: true},
	"db:backups":          {Level: ReadWrite, PerApp: true},
	"db:restore":          {Level: Admin, PerApp: true, Changes: true},
	"db:backups:schedule": {Level: Admin, PerApp: true, Changes: true},

	// An app's Redis takes memory on its host and redis:destroy deletes
	// data: the admin's, like db:create. A developer sees it (never its
	// password).
	"redis":         {Level: ReadWrite, PerApp: true},
	"redis:create":  {Level: Admin, PerApp: true, Changes: true},
	"redis:destroy": {Level: Admin, PerApp: true, Changes: true},

	"ps":         {Level: ReadWrite, PerApp: true},
	"ps:scale":   {Level: ReadWrite, PerApp: true, Changes: true},
	"ps:restart": {Level: ReadWrite, PerApp: true, Changes: true},
	"ps:limit":   {Level: Admin, PerApp: true, Changes: true}, // limits guard the host from the app: the admin's
	"run":        {Level: ReadWrite, PerApp: true, Changes: true},
	// Scheduled jobs (app.json's cron): the app's developers, like run.
	"cron":     {Level: ReadWrite, PerApp: true},
	"cron:run": {Level: ReadWrite, PerApp: true, Changes: true},

	// Maintenance mode (maintenance:on/off): the app's developers, like
	// ps:restart.
	"maintenance":     {Level: ReadWrite, PerApp: true},
	"maintenance:on":  {Level: ReadWrite, PerApp: true, Changes: true},
	"maintenance:off": {Level: ReadWrite, PerApp: true, Changes: true},

	"domains":        {Level: ReadWrite, PerApp: true},
	"domains:add":    {Level: ReadWrite, PerApp: true, Changes: true},
	"domains:remove": {Level: ReadWrite, PerApp: true, Changes: true},
	"domains:cert":   {Level: ReadWrite, PerApp: true, Changes: true},

	"keys":        {Level: Admin},
	"keys:add":    {Level: Admin, Changes: true},
	"keys:remove": {Level: Admin, Changes: true},

	"access":        {Level: Admin, PerApp: true},
	"access:grant":  {Level: Admin, PerApp: true, Changes: true},
	"access:revoke": {Level: Admin, PerApp: true, Changes: true},
	"audit":         {Level: Admin},
	"hosts":         {Level: Admin},

	// Webhook notifications: platform-wide subscriptions are the admin's,
	// an app's are its developers' (--app names it, so the commands check
	// it themselves: gitserver/cmd_notify.go, mayNotify).
	"notify":        {Level: ReadOnly},
	"notify:add":    {Level: ReadOnly, Changes: true},
	"notify:remove": {Level: ReadOnly, Changes: true},
	"notify:test":   {Level: ReadOnly, Changes: true},

	// The web dashboard (package dashboard): any user may log a browser in
	// as themselves and list or end their own sessions; what the browser
	// then sees and does is checked against this same table, per page.
	"dashboard":          {Level: ReadOnly, Changes: true},
	"dashboard:sessions": {Level: ReadOnly},
	"dashboard:logout":   {Level: ReadOnly, Changes: true},
}

// Authorize decides, in one place, whether user u may do op (a key of
// Permissions) on app (nil for operations on the server). An app the user
// has no access to is reported as not found, so names of other people's apps
// do not leak; a user who may see the app but not do op is told why.
func Authorize(ctx context.Context, s Store, u *User, op string, app *App) error {
	p, ok := Permissions[op]
	if !ok {
		return Errorf(EUNAUTHORIZED, "%q is not an operation anyone may do", truncate(op))
	}
	if p.PerApp != (app != nil) {
		return fmt.Errorf("authorize %s: called with app=%v, the operation wants PerApp=%v", op, app != nil, p.PerApp)
	}
	level, err := AccessFor(ctx, s, u, app)
	if err != nil {
		return fmt.Errorf("authorize %s: %w", op, err)
	}
	switch {
	case level >= p.Level:
		return nil
	case app != nil && level == NoAccess:
		return AppNotFound(app.Name)
	case p.Level == Admin:
		return Errorf(EUNAUTHORIZED, "%s needs an admin", op)
	default:
		return Errorf(EUNAUTHORIZED, "you may not %s", op)
	}
}

// AppNotFound is the error for an app that does not exist or that the user
// may not see: the two must read the same.
func AppNotFound(name string) *Error {
	return Errorf(ENOTFOUND, "app %q not found", truncate(name))
}
