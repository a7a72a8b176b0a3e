#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0)) {
        printf("ollamax version is %s\n", OX_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: ollamax serve|create|pull|list|show|rm|cp|ps|run\n");
    return 1;
}
