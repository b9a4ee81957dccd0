package e2e

import (
	"strings"
	"testing"
)

// TestMedia: the app's uploads (MEDIA_ROOT) are served at /media/ by the
// front nginx, as Django itself serves them only with DEBUG; a link the
// app puts there may not lead to another owner's file.
func TestMedia(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	work := in.WorkTree("hello")
	in.pushOK(work, "media")
	// What an upload view does: default_storage.save, in a new directory.
	save := `python manage.py shell -c "from django.core.files.base import ContentFile; from django.core.files.storage import default_storage; print(default_storage.save('uploads/2026/note.txt', ContentFile(b'uploaded-media-ok')))"`
	if r := in.SSH(in.AdminKey, "run media -- "+save); r.Code != 0 || !strings.Contains(r.Stdout, "uploads/2026/note.txt") {
		t.Fatalf("saving an upload: %s", r)
	}
	if code, body, _ := in.Get("media", "/media/uploads/2026/note.txt"); code != 200 || body != "uploaded-media-ok" {
		t.Errorf("GET /media/uploads/2026/note.txt = %d %q", code, body)
	}
	if r := in.SSH(in.AdminKey, `run media -- python -c "import os; from django.conf import settings; os.symlink('/etc/passwd', os.path.join(settings.MEDIA_ROOT, 'passwd'))"`); r.Code != 0 {
		t.Fatalf("planting a link: %s", r)
	}
	if code, body, _ := in.Get("media", "/media/passwd"); code == 200 || strings.Contains(body, "root:x:0:0") {
		t.Errorf("GET /media/passwd = %d %q: a link to a root file was served", code, body)
	}
	if code, _, _ := in.Get("media", "/media/missing.txt"); code != 404 {
		t.Errorf("GET /media/missing.txt = %d, want 404", code)
	}
}
