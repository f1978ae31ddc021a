package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/relaywatch/relaywatch/alert"
	"github.com/relaywatch/relaywatch/parsers/source"
)

// watchState is what detection and alerting keep across a restart, saved
// atomically in the state dir as state.json. File positions are saved by
// the input side beside it (positions.json).
type watchState struct {
	Version int       `json:"version"`
	Saved   time.Time `json:"saved"`
	// OpenAlerts is read from state files of version 1; the open alerts
	// live in alerts.journal now (alerting.snapshot).
	OpenAlerts   []alert.Alert `json:"open_alerts,omitempty"`
	LocalDomains []string      `json:"local_domains,omitempty"`
	// Positions is read from state files of version 1, which held them.
	Positions source.Positions `json:"positions,omitempty"`
}

// stateFiles are the files of the state directory.
type stateFiles struct {
	statePath, positionsPath string
	saved                    *watchState
	positions                source.Positions
	// firstStart is true when the directory holds no state: files present
	// at the start are read from their end.
	firstStart bool
	savedAt    time.Time
}

// openState reads the state directory.
func openState(dir string) (*stateFiles, error) {
	s := &stateFiles{statePath: filepath.Join(dir, "state.json"), positionsPath: filepath.Join(dir, "positions.json")}
	s.saved = &watchState{}
	data, err := os.ReadFile(s.statePath)
	stateExists := err == nil
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("state: %w", err)
	default:
		if err := json.Unmarshal(data, s.saved); err != nil {
			return nil, fmt.Errorf("state %s: %w", s.statePath, err)
		}
	}
	positions, ok, err := source.LoadPositions(s.positionsPath)
	if err != nil {
		return nil, err
	}
	s.positions = positions
	if !ok && len(s.saved.Positions) > 0 {
		s.positions = s.saved.Positions // saved by version 1
	}
	s.saved.Positions = nil
	s.firstStart = !ok && !stateExists
	if fi, err := os.Stat(s.positionsPath); err == nil {
		s.savedAt = fi.ModTime()
	} else if stateExists {
		s.savedAt = s.saved.Saved
	}
	return s, nil
}

// save writes the positions and the state, each atomically.
func (s *stateFiles) save(positions source.Positions, st *watchState) error {
	if err := positions.Save(s.positionsPath); err != nil {
		return err
	}
	data, err := marshalIndent(st)
	if err != nil {
		return err
	}
	return source.WriteFileAtomic(s.statePath, data)
}

// marshalIndent is JSON for the state files, without HTML escaping.
func marshalIndent(v any) ([]byte, error) {
	data, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
