module walraft

go 1.26

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0
	github.com/google/go-cmp v0.7.0
	go.etcd.io/raft/v3 v3.7.0
	pgregory.net/rapid v1.3.0
)

require google.golang.org/protobuf v1.36.11

require (
	github.com/kr/text v0.2.0 // indirect
	gopkg.in/yaml.v3 v3.0.1
)
