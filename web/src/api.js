// The HTTP function: public model info, and the signed-in helpers that proxy the private buckets.

export class Api {
  constructor(baseUrl, auth) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.auth = auth;
  }

  async #call(method, path, { body, contentType, signedIn = true, headers: extra = {} } = {}) {
    const headers = { ...extra };
    if (signedIn) {
      const user = this.auth.currentUser;
      if (!user) throw new Error('Sign in first.');
      headers.Authorization = `Bearer ${await user.getIdToken()}`;
    }
    if (contentType) headers['Content-Type'] = contentType;
    const response = await fetch(`${this.baseUrl}${path}`, { method, headers, body });
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try { message = (await response.json()).error || message; } catch { /* not JSON */ }
      throw new Error(message);
    }
    return response;
  }

  async modelInfo() {
    return (await this.#call('GET', '/model/info', { signedIn: false })).json();
  }

  async uploadVoice(voiceId, file, consent) {
    const ext = (file.name.split('.').pop() || 'wav').toLowerCase();
    const path = `/voices/${encodeURIComponent(voiceId)}.${encodeURIComponent(ext)}`;
    const headers = consent ? { 'X-Voice-Consent': encodeURIComponent(consent) } : {};
    return (await this.#call('PUT', path, {
      body: file, contentType: file.type || 'application/octet-stream', headers,
    })).json();
  }

  async submitJob(request) {
    return (await this.#call('POST', '/jobs', { body: JSON.stringify(request), contentType: 'application/json' })).json();
  }

  // The finished audio as a Blob (the buckets are private; the function checks the token).
  async output(name) {
    return (await this.#call('GET', `/outputs/${name.split('/').map(encodeURIComponent).join('/')}`)).blob();
  }

  // One rendered part of a job (24 kHz WAV), readable while the job still renders.
  async part(jobId, index) {
    return this.output(`${jobId}/parts/${Number(index)}.wav`);
  }
}
