package source

import (
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// notifier wakes path followers when something happens in their directory
// (inotify, kqueue or ReadDirectoryChangesW through fsnotify, the layer
// nxadm/tail is built on), so that a new line is read within milliseconds
// instead of at the next poll. Polling stays the safety net: a directory
// that does not exist yet, a file system without notifications (NFS) or a
// watch limit reached only make reading wait for the next poll.
type notifier struct {
	w      *fsnotify.Watcher
	rescan func()

	mu   sync.Mutex
	dirs map[string]map[*pathFollower]bool
	done chan struct{}
}

// newNotifier returns a notifier, or nil when the system gives none.
func newNotifier(rescan func()) *notifier {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil
	}
	n := &notifier{w: w, rescan: rescan, dirs: map[string]map[*pathFollower]bool{}, done: make(chan struct{})}
	go n.run()
	return n
}

// watch wakes pf on changes in its directory; false when the directory
// cannot be watched (yet).
func (n *notifier) watch(pf *pathFollower) bool {
	if n == nil {
		return false
	}
	dir := filepath.Dir(pf.path)
	n.mu.Lock()
	defer n.mu.Unlock()
	if set, ok := n.dirs[dir]; ok {
		set[pf] = true
		return true
	}
	if err := n.w.Add(dir); err != nil {
		return false
	}
	n.dirs[dir] = map[*pathFollower]bool{pf: true}
	return true
}

// forget stops waking pf.
func (n *notifier) forget(pf *pathFollower) {
	if n == nil {
		return
	}
	dir := filepath.Dir(pf.path)
	n.mu.Lock()
	defer n.mu.Unlock()
	if set, ok := n.dirs[dir]; ok {
		delete(set, pf)
		if len(set) == 0 {
			delete(n.dirs, dir)
			n.w.Remove(dir)
		}
	}
}

func (n *notifier) run() {
	defer close(n.done)
	for {
		select {
		case ev, ok := <-n.w.Events:
			if !ok {
				return
			}
			dir := filepath.Dir(ev.Name)
			n.mu.Lock()
			for pf := range n.dirs[dir] {
				pf.wakeUp()
			}
			n.mu.Unlock()
			if ev.Op&(fsnotify.Create|fsnotify.Rename|fsnotify.Remove) != 0 {
				n.rescan() // a glob may match something new, or lose a match
			}
		case _, ok := <-n.w.Errors:
			if !ok {
				return
			}
			// An overflow: wake everyone, polling catches up anyway.
			n.mu.Lock()
			for _, set := range n.dirs {
				for pf := range set {
					pf.wakeUp()
				}
			}
			n.mu.Unlock()
		}
	}
}

// close stops the notifier.
func (n *notifier) close() {
	if n == nil {
		return
	}
	n.w.Close()
	<-n.done
}
