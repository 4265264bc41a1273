/*
 * curl_dl.h - the libcurl functions postroom uses, loaded at run time
 */
#ifndef POSTROOM_CURL_DL_H
#define POSTROOM_CURL_DL_H

#include <curl/curl.h>

struct curl_dl {
	CURLcode (*global_init)(long);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	void (*easy_cleanup)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	const char *error; /* why it could not be loaded, or NULL */
};

/* curl_dl - libcurl, loaded and initialised on the first call (thread
 * safe); check ->error before using a function */
const struct curl_dl *curl_dl(void);

#endif
