// Package redisimage carries the script that builds the hasession Redis image offline, so
// that code which needs the image (package cluster, the bench CLI) can build it on first use.
//
// The image is built FROM scratch out of Debian's redis-tools package: the redis-server
// binary (which also serves as redis-sentinel), redis-cli, the libraries they link and the
// dynamic loader. No registry is used. `make image` runs the same script.
package redisimage

import _ "embed"

// BuildScript is the bash script docker/build-image.sh. Run it with `bash -s -- [flags]`
// and the script on standard input; it prints the image tag on its last line of stdout.
//
//go:embed build-image.sh
var BuildScript string

// Repository is the repository part of the image's name; the tag is the Redis version.
const Repository = "hasession/redis"
