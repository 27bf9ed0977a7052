# Multi-stage build of a static greipsec binary.
#
#   docker build -t greipsec .
#   docker run --rm --cap-add NET_ADMIN --cap-add NET_RAW --device /dev/net/tun \
#       -v $PWD/examples/site-a.toml:/etc/greipsec.toml:ro greipsec up -c /etc/greipsec.toml
#
# NET_ADMIN creates and configures the TUN device, NET_RAW opens the raw ESP
# socket (not needed with transport = "udp").
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o /greipsec ./cmd/greipsec

FROM scratch
COPY --from=build /greipsec /greipsec
ENTRYPOINT ["/greipsec"]
