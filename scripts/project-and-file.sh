# Sourced by backup.sh and restore.sh with their arguments: reads
# [-p PROJECT] FILE into $project (docker compose's -p arguments, or none)
# and $file (made absolute, as both scripts change directory).
usage() {
  echo "usage: $0 [-p PROJECT] FILE" >&2
  exit 2
}
project=()
while getopts "p:h" option; do
  case $option in
    p) project=(-p "$OPTARG") ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
file=$1
case $file in /*) ;; *) file="$PWD/$file" ;; esac
