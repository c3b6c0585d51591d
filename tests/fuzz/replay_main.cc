// Replays a fuzz target's seed corpus as an ordinary test, in every build
// (gcc included): each file named on the command line, or each file in a
// directory named there, goes once through LLVMFuzzerTestOneInput.
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int RunFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 0;
  for (int i = 1; i < argc; ++i) {
    struct stat st {};
    if (stat(argv[i], &st) != 0) {
      (void)fprintf(stderr, "%s: missing\n", argv[i]);
      return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
      runs += RunFile(argv[i]);
      continue;
    }
    DIR* d = opendir(argv[i]);
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') runs += RunFile(std::string(argv[i]) + "/" + e->d_name);
    closedir(d);
  }
  printf("%d inputs replayed\n", runs);
  return runs > 0 ? 0 : 1;
}
