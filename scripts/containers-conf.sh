# Sourced by compose-test.sh and kube-test.sh: this run's own container
# settings in $WORK/containers.conf (runtime runc, container ulimits
# nofile=20000 nproc=32768, which hosts with hybrid cgroups or a low hard
# nofile limit need); nothing host-wide is changed.
cat >"$WORK/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF=$WORK/containers.conf
