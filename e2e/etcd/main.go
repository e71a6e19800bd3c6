// etcd for the e2e tier: one member on loopback, from go.etcd.io/etcd/server/v3's embed
// package (the etcd binary's module replaces its siblings with local paths; this is the
// same server without them).
//
//	etcd DATA_DIR CLIENT_PORT PEER_PORT
package main

import (
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	if len(os.Args) != 4 {
		log.Fatal("usage: etcd DATA_DIR CLIENT_PORT PEER_PORT")
	}
	cfg := embed.NewConfig()
	cfg.Dir = os.Args[1]
	client := url.URL{Scheme: "http", Host: "127.0.0.1:" + os.Args[2]}
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:" + os.Args[3]}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	cfg.LogLevel = "error"

	server, err := embed.StartEtcd(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	select {
	case <-server.Server.ReadyNotify():
		log.Printf("etcd ready on %s", client.String())
	case <-time.After(60 * time.Second):
		server.Server.Stop()
		log.Fatal("etcd did not become ready in 60s")
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-server.Err():
		log.Fatal(err)
	case <-stop:
	}
}
