package node

import (
	"sort"

	"walraft/core/statemach"
)

func sortKeys(keys []statemach.Key) {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Topic != keys[j].Topic {
			return keys[i].Topic < keys[j].Topic
		}
		return keys[i].Partition < keys[j].Partition
	})
}
