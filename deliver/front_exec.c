/*
 * NAME
 *	front_exec - find and execute postroom-deliver-store (direct mode)
 * DESCRIPTION
 *	The storing program is never looked for in the environment. Unless
 *	setgid, first beside this program (its directory as the kernel's
 *	/proc/self/exe names it: a build tree, a copied pair); then, setgid
 *	or not, at paths fixed when the program was built: the installed
 *	$(pkglibexecdir)/postroom-deliver-store, then the build tree's
 *	(so that a build tree works before "make install"). It is opened,
 *	checked and executed through the open descriptor (fexecve), so what
 *	was checked is what runs. While setgid, it must be a regular file
 *	owned by root that neither its group nor others may change; it
 *	inherits the group, reads the configuration with it and drops it
 *	before it reads the message, as it always did.
 * NEVER
 *	takes the program's path from the environment or the command line;
 *	executes a file someone other than root may change while setgid.
 */
#include "front_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "front.h"

extern char **environ;

#ifndef DELIVER_STORE_PATH
#define DELIVER_STORE_PATH "/usr/lib/postroom/postroom-deliver-store"
#endif

/* front_open_store - open and check one candidate; fd, or -1 with *why_r */
static int front_open_store(const char *path, int setgid, const char **why_r)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		*why_r = strerror(errno);
		return -1;
	}
	*why_r = NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0)
		*why_r = "not an executable file";
	else if (setgid && (st.st_uid != 0 || (st.st_mode & 022) != 0))
		*why_r = "refused while setgid: must be owned by root and writable by root alone";
	if (*why_r) {
		close(fd);
		return -1;
	}
	return fd;
}

/* front_beside_self - the storing program in this program's own
 * directory, as the kernel names it (/proc/self/exe, not argv[0] nor the
 * environment); fills buf, 0 or -1 */
static int front_beside_self(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	char *slash;

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if ((slash = strrchr(buf, '/')) == NULL ||
	    (size_t)(slash - buf) + sizeof("/postroom-deliver-store") > size)
		return -1;
	strcpy(slash, "/postroom-deliver-store");
	return 0;
}

void front_exec_store(char **argv)
{
	const char *paths[4] = { NULL, NULL, NULL, NULL }, *err;
	char self[4096], why[2048] = "";
	size_t i, n = 0;
	int fd;

	if (!deliver_is_setgid() && front_beside_self(self, sizeof(self)) == 0)
		paths[n++] = self; /* a build tree, a copied pair: never while setgid */
	paths[n++] = DELIVER_STORE_PATH;
#ifdef DELIVER_STORE_BUILD
	paths[n++] = DELIVER_STORE_BUILD;
#endif
	for (i = 0; paths[i]; i++) {
		if ((fd = front_open_store(paths[i], deliver_is_setgid(), &err)) >= 0) {
			fexecve(fd, argv, environ);
			err = strerror(errno);
			close(fd);
		}
		snprintf(why + strlen(why), sizeof(why) - strlen(why), "%s%s: %s", i ? "; " : "",
			 paths[i], err);
	}
	deliver_operator_error("cannot execute the storing program: %s", why);
}
