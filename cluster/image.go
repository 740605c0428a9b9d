package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/moby/moby/client"

	redisimage "github.com/hasession/hasession/docker"
)

// ImageEnv names the environment variable that overrides the Redis image, for machines
// where a registry is at hand (REDIS_IMAGE=redis:7.2, say). Nothing is built then.
const ImageEnv = "REDIS_IMAGE"

var imageMu sync.Mutex

// EnsureImage returns the Redis image the topologies run: $REDIS_IMAGE when set, otherwise
// the newest local hasession/redis image, building it offline from Debian's redis-tools
// package (docker/build-image.sh) when there is none. Progress of a build goes to stderr.
func EnsureImage(ctx context.Context) (string, error) {
	if img := os.Getenv(ImageEnv); img != "" {
		return img, nil
	}
	imageMu.Lock()
	defer imageMu.Unlock()

	dc, err := dockerClient(ctx)
	if err != nil {
		return "", err
	}
	if img, ok, err := localImage(ctx, dc); err != nil {
		return "", err
	} else if ok {
		return img, nil
	}
	return BuildImage(ctx)
}

// BuildImage builds the hasession Redis image from Debian's redis-tools package (installing
// it with apt-get when missing) and returns its tag. The script's progress goes to stderr.
func BuildImage(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", "-s", "--")
	cmd.Stdin = strings.NewReader(redisimage.BuildScript)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("cluster: build redis image: %w", err)
	}
	lines := strings.Fields(strings.TrimSpace(out.String()))
	if len(lines) == 0 {
		return "", fmt.Errorf("cluster: build redis image: the script printed no tag")
	}
	return lines[len(lines)-1], nil
}

func localImage(ctx context.Context, dc *client.Client) (string, bool, error) {
	res, err := dc.ImageList(ctx, client.ImageListOptions{
		Filters: make(client.Filters).Add("reference", redisimage.Repository+":*"),
	})
	if err != nil {
		return "", false, fmt.Errorf("cluster: list images: %w", err)
	}
	var best string
	var created int64
	for _, im := range res.Items {
		for _, tag := range im.RepoTags {
			if strings.HasPrefix(tag, redisimage.Repository+":") && im.Created >= created {
				best, created = tag, im.Created
			}
		}
	}
	return best, best != "", nil
}
