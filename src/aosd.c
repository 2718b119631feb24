/* aosd.c - main(): placeholder until the daemon is wired. */
#include <stdio.h>
int main(void)
{
    puts("aosd " AOS_VERSION);
    return 0;
}
