//go:build tools

// Package tools records the main packages that hack/build-binaries.sh builds from
// this module (kubelet, kubeadm and kube-proxy with --kind, for the offline kind
// node image), so that `go mod tidy` keeps their dependencies in go.mod/go.sum.
// The build tag keeps it out of every real build.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
