package builder

// cronChanged tells the host's scheduler that app's current release (and
// so its cron entries) changed.
func (b *Builder) cronChanged(app string) {
	if b.CronChanged != nil {
		b.CronChanged(app)
	}
}
