/*
 * NAME
 *	curl_dl - libcurl loaded at run time, once per process
 * DESCRIPTION
 *	The programs that speak HTTP (the delivery notification,
 *	lib/store_notify.c; the S3 blob store, lib/blob_store_s3.c) reach
 *	libcurl through this table: dlopen("libcurl.so.4") and dlsym of
 *	the functions they use, then curl_global_init, on the first call
 *	(pthread_once). A program that never speaks HTTP never loads it.
 * NEVER
 *	exits or logs: a library that cannot be loaded is reported in
 *	->error for the caller to turn into its own answer.
 */
#include "curl_dl.h"

#include <dlfcn.h>
#include <pthread.h>

static struct curl_dl cd;
static pthread_once_t curl_dl_once = PTHREAD_ONCE_INIT;

/* curl_dl_sym - one symbol of the library, or NULL with cd.error set */
static void *curl_dl_sym(void *lib, const char *name)
{
	void *p = dlsym(lib, name);

	if (p == NULL && cd.error == NULL)
		cd.error = "libcurl.so.4 lacks a function postroom uses";
	return p;
}

/* curl_dl_load - dlopen libcurl and initialise it */
static void curl_dl_load(void)
{
	void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);

	if (lib == NULL) {
		cd.error = "cannot load libcurl.so.4 (install libcurl4)";
		return;
	}
	*(void **)&cd.global_init = curl_dl_sym(lib, "curl_global_init");
	*(void **)&cd.easy_init = curl_dl_sym(lib, "curl_easy_init");
	*(void **)&cd.easy_setopt = curl_dl_sym(lib, "curl_easy_setopt");
	*(void **)&cd.easy_perform = curl_dl_sym(lib, "curl_easy_perform");
	*(void **)&cd.easy_getinfo = curl_dl_sym(lib, "curl_easy_getinfo");
	*(void **)&cd.easy_cleanup = curl_dl_sym(lib, "curl_easy_cleanup");
	*(void **)&cd.easy_strerror = curl_dl_sym(lib, "curl_easy_strerror");
	*(void **)&cd.slist_append = curl_dl_sym(lib, "curl_slist_append");
	*(void **)&cd.slist_free_all = curl_dl_sym(lib, "curl_slist_free_all");
	if (cd.error == NULL && cd.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		cd.error = "curl_global_init failed";
}

const struct curl_dl *curl_dl(void)
{
	pthread_once(&curl_dl_once, curl_dl_load);
	return &cd;
}
