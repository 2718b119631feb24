# lib.sh - helpers shared by the benchmark scripts; source it.

# Busy share of all CPUs over one second, from /proc/stat (other tenants of
# the machine show up here: a noisy neighbour explains a noisy result).
cpu_busy_pct() {
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN{split(a,x," "); split(b,y," ");
    bu=y[1]-x[1]; id=y[2]-x[2]; printf "%.0f", (bu+id>0)? 100*bu/(bu+id) : 0}'
}
