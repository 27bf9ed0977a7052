# greipsec in a minimal image: a static binary (CGO_ENABLED=0, -trimpath)
# on scratch, run as the numeric non-root user 65532, with a read-only root
# file system. Nothing else is in the image: no shell, no libc, no package.
#
#   docker build -t greipsec .
#
# Without any privilege (netstack inner side, ESP-in-UDP, IKE on the
# ESP-in-UDP port; see examples/netstack-a.toml): no capability, a read-only
# root, the control socket on a tmpfs (Docker makes it mode 1777; the
# socket itself is the user's, mode 0600). Programs in the
# container (or in containers that share its network, --network
# container:gw) use the SOCKS5 proxy on 127.0.0.1:1080; the peer is told
# this host's address and port 14500 (strongSwan: remote_port = 14500,
# local_port = 4500).
#
#   docker run -d --name gw --read-only --cap-drop ALL --user 65532:65532 \
#       --security-opt no-new-privileges \
#       --tmpfs /run/greipsec \
#       -p 14500:14500/udp \
#       -v $PWD/examples/netstack-a.toml:/etc/greipsec/greipsec.toml:ro \
#       greipsec
#   docker exec gw /greipsec show
#
# With a TUN device (inner = "tun"): the device and the capabilities are
# root's, so run as root, with only those capabilities: NET_ADMIN for the
# TUN device, NET_RAW for raw ESP (transport = "esp"; not needed with
# "udp"). Docker lets anyone bind ports below 1024, port 500 included.
#
#   docker run -d --name gw --read-only --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW \
#       --user 0:0 --device /dev/net/tun --network host \
#       --tmpfs /run/greipsec \
#       -v $PWD/examples/site-a.toml:/etc/greipsec/greipsec.toml:ro \
#       greipsec
#
# Manual keys keep their sequence numbers in a state file: give it a
# volume (state-file = "/var/lib/greipsec/greipsec.state",
# -v greipsec-state:/var/lib/greipsec). The control socket is
# $XDG_RUNTIME_DIR/greipsec/greipsec.sock, /run/greipsec/greipsec.sock here,
# for root and for user 65532 alike.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o /greipsec ./cmd/greipsec
# The directories the image provides, owned by the user it runs as: scratch
# has no shell to make them. A read-only container mounts a tmpfs or a
# volume on them.
RUN mkdir -p /rootfs/run/greipsec /rootfs/var/lib/greipsec /rootfs/etc/greipsec \
 && chown 65532:65532 /rootfs/run/greipsec /rootfs/var/lib/greipsec \
 && chmod 0700 /rootfs/run/greipsec /rootfs/var/lib/greipsec

FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build /greipsec /greipsec
USER 65532:65532
ENV XDG_RUNTIME_DIR=/run
ENTRYPOINT ["/greipsec"]
CMD ["up", "-c", "/etc/greipsec/greipsec.toml"]
