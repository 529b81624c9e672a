package scenarios

// LostOps returns the successful produces (acks 1 and -1) whose records are
// missing from the final log of the node with the highest HWM, by op id:
// the ops a report marks "lost" (whether each loss is allowed is the
// checkers' business: acks=1 loss through a leader change is).
func LostOps(h *History) map[OpID]bool { return lostOps(h) }
