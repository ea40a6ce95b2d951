# kind node image built without a container registry (hack/kind/build-offline-images.sh):
# Debian bookworm's systemd, containerd, runc and CNI plugins, kind's own base-image files
# (entrypoint, containerd config, systemd units; copied from the kind module into the
# build context as kind/), the Kubernetes node binaries built from their Go modules
# (bin/), and a plain ptp + host-local CNI config (cni/) standing in for kindnetd on a
# single-node cluster. The control-plane images are imported afterwards into
# containerd's k8s.io namespace by the build script, as `kind build node-image` does.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# The packages of kind's base image that a node here uses; no NFS/iSCSI/fuse tools.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      systemd conntrack iptables nftables iproute2 ethtool util-linux mount kmod \
      libseccomp2 pigz bash ca-certificates jq procps \
      containerd runc containernetworking-plugins \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
 && rm -f /lib/systemd/system/multi-user.target.wants/* \
 && rm -f /etc/systemd/system/*.wants/* \
 && rm -f /lib/systemd/system/local-fs.target.wants/* \
 && rm -f /lib/systemd/system/sockets.target.wants/*udev* \
 && rm -f /lib/systemd/system/sockets.target.wants/*initctl* \
 && rm -f /lib/systemd/system/basic.target.wants/* \
 && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
 && ln -sf /usr/lib/systemd/systemd /sbin/init

COPY kind/ /
COPY bin/ /usr/bin/
COPY cni/ /etc/cni/net.d/

ARG KUBE_VERSION
ARG PAUSE_IMAGE
# kind's units start /usr/local/bin/containerd and its config looks for CNI plugins in
# /opt/cni/bin; Debian installs them in /usr/bin and /usr/lib/cni. The OCI spec base
# and the sandbox image are set up as `kind build node-image` does. containerd keeps pods'
# oom_score_adj at or above its own: lowering it needs CAP_SYS_RESOURCE, which a node
# may lack (then runc cannot start any pod); only the kubelet's OOM ordering is lost.
RUN chmod 0755 /kind /kind/bin /kind/bin/* /usr/local/bin/entrypoint /usr/local/bin/clean-install \
      /usr/bin/kubelet /usr/bin/kubeadm /usr/bin/kubectl \
 && chmod -R u+w,go-w /kind /etc/containerd /etc/systemd/system /etc/default /etc/sysctl.d /etc/crictl.yaml /etc/cni \
 && ln -sf /usr/bin/containerd /usr/local/bin/containerd \
 && mkdir -p /opt/cni && ln -sfn /usr/lib/cni /opt/cni/bin \
 && ctr oci spec \
      | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
      | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \
 && sed -i "s#sandbox_image = .*#sandbox_image = \"${PAUSE_IMAGE}\"#" /etc/containerd/config.toml \
 && grep -q "sandbox_image = \"${PAUSE_IMAGE}\"" /etc/containerd/config.toml \
 && sed -i "s/restrict_oom_score_adj = false/restrict_oom_score_adj = true/" /etc/containerd/config.toml \
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
 && systemctl mask systemd-binfmt.service \
 && mkdir -p /etc/kubernetes/manifests \
 && echo -n "${KUBE_VERSION}" > /kind/version \
 && containerd --version && runc --version && kubelet --version

# As kind's base image: systemd learns it is in a container, and stops on SIGRTMIN+3.
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
